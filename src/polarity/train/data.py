"""The rows a training run learns from: reading and selecting them, the teacher's
probabilities, and the order they come in."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from polarity.contract import normalize_whitespace, text_problem
from polarity.data.teacher import read_teacher_file, text_key
from polarity.data.writers import read_rows
from polarity.errors import InputError
from polarity.labels import LabelError, parse_label
from polarity.train.config import TrainConfig


def training_rows(config: TrainConfig, announce: bool = True
                  ) -> tuple[list[dict], int, list[dict], int]:
    """``(rows, bad rows, validation rows, bad validation rows)`` as the config selects them;
    the bad rows are reported on stderr when ``announce``."""
    if not Path(config.train_file).exists():
        raise InputError(f"training file not found: {config.train_file}. Prepared splits come "
                         "from `polarity prepare --config configs/prepare_default.yaml` (or "
                         "`make prepare-default`) for the configs in configs/; otherwise "
                         "point train_file at your JSONL or Parquet file")
    select = {"sources": config.sources, "min_chars": config.min_chars}
    teacher = (read_teacher_file(config.teacher_file, config.teacher_column)
               if config.teacher_file else None)
    rows, bad = load_labelled(config.train_file, config.max_train_rows, **select,
                              teacher_column=config.teacher_column, teacher=teacher,
                              gold_sources=config.gold_sources)
    if config.sample_train_rows and config.sample_train_rows < len(rows):
        keep = np.random.default_rng(config.seed).choice(len(rows), config.sample_train_rows,
                                                         replace=False)
        rows = [rows[i] for i in sorted(keep)]
    if not rows:
        raise InputError(f"{config.train_file} has no usable rows (text + POSITIVE/NEGATIVE"
                         + (", matching sources/min_chars)" if config.sources or config.min_chars
                            else ")"))
    val_rows, val_bad = (load_labelled(config.val_file, config.max_val_rows, **select)
                         if config.val_file else ([], 0))
    if announce and (bad or val_bad):
        print(f"polarity train: skipped {bad} bad training row(s) in {config.train_file}"
              + (f" and {val_bad} in {config.val_file}" if val_bad else "")
              + " (not JSON, no text, a label other than POSITIVE/NEGATIVE"
              + (f", or no teacher probability in {config.teacher_column!r})"
                 if config.teacher_column else ")"),
              file=sys.stderr)
    return rows, bad, val_rows, val_bad


def load_labelled(path: Path, limit: int | None = None, sources: list[str] | None = None,
                  min_chars: int = 0, teacher_column: str | None = None,
                  teacher: dict[int, float] | None = None,
                  gold_sources: list[str] | None = None) -> tuple[list[dict], int]:
    """Rows with a usable text and label; returns (rows, number of bad rows skipped: not
    JSON, no text, or a label that is not POSITIVE/NEGATIVE).

    ``sources`` and ``min_chars`` select rows (not counted as bad): a row is kept when its
    ``source`` is listed and its text has at least ``min_chars`` characters. With
    ``teacher_column`` each row also gets ``teacher``, the teacher's P(POSITIVE), from the
    row or, with ``teacher`` (a teacher file's ``{key: probability}``), looked up by the
    text's key; a row without a usable one is bad, and a row without a label is kept
    (label None: the teacher alone teaches it). A labelled row of one of ``gold_sources``
    gets ``teacher`` None: its label alone teaches it.
    """
    rows, bad = [], 0
    wanted = set(sources) if sources is not None else None
    gold = set(gold_sources or ())

    def count_bad(line: int, reason: str) -> None:
        nonlocal bad
        bad += 1

    for row in read_rows(path, on_bad=count_bad):
        if wanted is not None and row.get("source") not in wanted:
            continue
        text = row.get("text")
        try:
            label = parse_label(row.get("label"))
        except LabelError:
            if teacher_column is None or row.get("label") is not None:
                bad += 1
                continue
            label = None
        if text_problem(text):
            bad += 1
            continue
        text = normalize_whitespace(text)
        if len(text) < min_chars:
            continue
        item = {"text": text, "label": label}
        if teacher_column is not None and label is not None and row.get("source") in gold:
            item["teacher"] = None
        elif teacher_column is not None:
            value = (teacher.get(text_key(text)) if teacher is not None
                     else row.get(teacher_column))
            item["teacher"] = teacher_probability(value)
            if item["teacher"] is None:
                bad += 1
                continue
        rows.append(item)
        if limit is not None and len(rows) >= limit:
            break
    return rows, bad


def teacher_probability(value) -> float | None:
    """P(POSITIVE) from a number, or from ``polarity batch``'s ``scores`` mapping."""
    if isinstance(value, dict):
        value = value.get("POSITIVE")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def epoch_batches(rows: list[dict], batch_size: int, seed: int, group: int = 50
                  ) -> list[np.ndarray]:
    """Shuffled batches of similar-length texts (deterministic for a seed).

    Rows are shuffled, cut into chunks of ``group`` batches, sorted by length inside each
    chunk, batched, and the batches shuffled again: padding shrinks several-fold on mixed
    phrase/review data while every batch still mixes the whole data set's rows.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    chunk = batch_size * group
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: len(rows[i]["text"]))
        batches += [np.asarray(part[i:i + batch_size]) for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
