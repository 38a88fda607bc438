"""``polarity subset``: a small, balanced training set drawn from prepared splits, for a
model whose every row is dear (the accurate tier trains at about 1.5 s a row on two CPU
cores).

Per source it takes a fixed number of rows, half of each label, at most ``max_chars`` long,
and drops any text that an evaluation file also holds (by the same normalised key that
``prepare`` de-duplicates with). For sources that list every sub-phrase of their sentences
(SST-2's train split holds each sentence and the phrases of its parse tree) ``whole_texts``
keeps only texts that no longer text of that source contains: the sentences.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from polarity.data.cleaning import normalized_key
from polarity.data.inputs import iter_source
from polarity.data.sources import Record, SourceSpec
from polarity.data.tables import iter_rows
from polarity.data.writers import read_rows
from polarity.errors import InputError
from polarity.folders import write_atomically
from polarity.labels import LABELS


class SubsetConfig(BaseModel):
    """Arguments of ``polarity subset``."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    prepared_dir: Path = Path("data/default")
    """A ``polarity prepare`` output: train rows come from its train split, validation rows
    from its val split, and ``whole_texts`` looks at all three splits."""
    output_dir: Path = Path("data/accurate")
    """Where train.jsonl, val.jsonl and stats.json go."""
    train_rows: dict[str, int] = Field(min_length=1)
    """Rows to take from each source (its ``source`` column) for training, half per label."""
    val_rows: dict[str, int] = {}
    """Rows to take from each source for validation, half per label."""
    whole_texts: list[str] = []
    """Sources whose texts are kept only when no longer text of the same source contains
    them (SST-2: sentences, not their sub-phrases)."""
    min_chars: int = Field(20, ge=0)
    """Shorter texts are not taken."""
    max_chars: int = Field(400, ge=1)
    """Longer texts are not taken (they would be cut at the model's max_length)."""
    exclude: list[str] = []
    """Evaluation files (JSONL, CSV, TSV with a ``text`` column), or data set sources such as
    ``hf:stanfordnlp/sst2?split=validation&text_column=sentence&local_copy=tsv:...``, whose
    texts are never taken."""
    seed: int = 42
    """Seed of the draw."""


def subset(config: SubsetConfig) -> dict:
    """Write the subset and return its statistics (also written to ``stats.json``)."""
    splits = {s: _read_split(config.prepared_dir / f"{s}.jsonl") for s in ("train", "val")}
    test = config.prepared_dir / "test.jsonl"
    every = splits["train"] + splits["val"] + (_read_split(test) if test.is_file() else [])
    contained = contained_texts(every, set(config.whole_texts))
    excluded = excluded_keys(config.exclude)
    stats: dict = {"config": json.loads(config.model_dump_json()), "splits": {},
                   "not_whole": len(contained), "excluded_keys": len(excluded)}
    rng = np.random.default_rng(config.seed)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    for split, quota in (("train", config.train_rows), ("val", config.val_rows)):
        if not quota:
            continue
        chosen, counts = [], {}
        for source, wanted in quota.items():
            rows = [r for r in splits[split] if r.get("source") == source
                    and config.min_chars <= len(r["text"]) <= config.max_chars
                    and r["text"] not in contained and normalized_key(r["text"]) not in excluded]
            picked = _balanced(rows, wanted, rng, f"{split} rows of source {source!r}")
            chosen += picked
            counts[source] = dict(Counter(r["label"] for r in picked))
        chosen = [chosen[i] for i in rng.permutation(len(chosen))]
        write_atomically(config.output_dir / f"{split}.jsonl", "".join(
            json.dumps(r, ensure_ascii=False) + "\n" for r in chosen))
        stats["splits"][split] = {"rows": len(chosen), "sources": counts}
    write_atomically(config.output_dir / "stats.json", json.dumps(stats, indent=2) + "\n")
    return stats


def _read_split(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"prepared split not found: {path}; run `polarity prepare --config "
                         "configs/prepare_default.yaml` first (or set prepared_dir)")
    return [{"text": r["text"], "label": r["label"], "source": r.get("source")}
            for r in read_rows(path) if isinstance(r.get("text"), str) and r.get("label") in LABELS]


def contained_texts(rows: list[dict], sources: set[str]) -> set[str]:
    """Texts of ``sources`` that occur inside a longer text of the same source."""
    out: set[str] = set()
    for source in sources:
        texts = sorted({r["text"] for r in rows if r.get("source") == source}, key=len)
        if not texts:
            raise InputError(f"whole_texts names source {source!r}, which no prepared split has")
        joined = "\n".join(texts)  # texts hold no newline (cleaning folds whitespace)
        out.update(t for t in texts if joined.count(t) > 1)
    return out


def excluded_keys(paths: list[str]) -> set[str]:
    keys: set[str] = set()
    for path in paths:
        if str(path).startswith("hf:"):
            keys.update(normalized_key(r.text) for r in iter_source(SourceSpec.parse(path))
                        if isinstance(r, Record))
            continue
        if not Path(path).is_file():
            raise InputError(f"exclude file not found: {path}")
        for row in iter_rows(Path(path), required=("text",)):
            if row.fields and isinstance(row.fields.get("text"), str):
                keys.add(normalized_key(row.fields["text"]))
    return keys


def _balanced(rows: list[dict], wanted: int, rng: np.random.Generator, what: str) -> list[dict]:
    half = {LABELS[0]: wanted // 2, LABELS[1]: wanted - wanted // 2}
    picked = []
    for label, n in half.items():
        pool = [r for r in rows if r["label"] == label]
        if len(pool) < n:
            raise InputError(f"{what}: {n} {label} wanted, only {len(pool)} usable")
        picked += [pool[i] for i in sorted(rng.choice(len(pool), n, replace=False))]
    return picked
