"""``polarity batch``: score files too large for memory, locally or on Ray, resumably.

The input is planned into shards (:mod:`polarity.batch_shards`); each shard becomes one
``part-NNNNN.parquet`` (input columns, ``row_id``, ``predicted_sentiment``, ``confidence``,
``scores``) written atomically, plus ``_errors/part-NNNNN.jsonl`` for its bad rows (names
starting with ``_`` keep pyarrow, pandas and Spark reading the folder as one Parquet data
set). A shard is done exactly when its Parquet file exists, so a rerun after a crash skips
finished shards and every row ends up in the output exactly once.

Engines: ``local`` scores shards in this process; ``ray`` sends shard descriptions through
Ray Data ``map_batches`` to a fixed pool of actors that each load the model once and write
their shards (the output folder must then be shared storage on a cluster).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from polarity.batch_shards import Shard, plan, read_shard
from polarity.contract import LoadOptions, is_blank
from polarity.errors import InputError
from polarity.folders import write_atomically

MANIFEST = "_batch.json"
RESULT_COLUMNS = ("row_id", "predicted_sentiment", "confidence", "scores")


@dataclass
class BatchOptions:
    """Arguments of ``polarity batch``."""

    model: str = "default"
    """'default', 'vader' or a model folder."""
    input: Path = Path("texts.csv")
    """A CSV/TSV/JSONL/Parquet file or a folder of them."""
    output: Path = Path("scored")
    """Output folder of Parquet parts (created; reused to resume)."""
    engine: str = "local"
    """``local`` or ``ray``."""
    text_column: str = "text"
    """Column holding the text."""
    batch_size: int = 64
    """Texts per model call."""
    shard_rows: int = 10_000
    """Rows per output part: the unit of resumption."""
    ray_address: str | None = None
    """A Ray cluster (``ray://host:10001`` or ``auto``); None starts a local Ray."""
    num_actors: int = 2
    """Ray actors, each with its own copy of the model."""
    threads_per_actor: int = 1
    """CPU threads (and Ray CPUs) per actor."""
    progress: bool = True
    """Show a progress bar."""
    load: LoadOptions = field(default_factory=LoadOptions)
    """How to load the model (device, runtime ...); a Ray actor adds its thread count."""


def score_shard(predictor, shard: Shard, output: Path, text_column: str, batch_size: int,
                on_rows: Callable[[int], None] | None = None) -> dict:
    """Score one shard and write its part (and its errors) atomically; returns counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    good, errors = [], []
    for row_id, row, error in read_shard(shard):
        if error is None:
            text = row.get(text_column)
            if text_column not in row:
                error = f"column {text_column!r} is missing"
            elif not isinstance(text, str) or is_blank(text):
                error = f"column {text_column!r} is empty or not text"
        if error is not None:
            errors.append({"row_id": row_id, "file": shard.path, "error": error,
                           "row": row})
        else:
            good.append((row_id, row))
    labels, confidences, scores = [], [], []
    for start in range(0, len(good), batch_size * 8):
        chunk = good[start:start + batch_size * 8]
        for p in predictor.predict([r[text_column] for _, r in chunk], batch_size=batch_size):
            labels.append(p.label)
            confidences.append(p.confidence)
            scores.append({"NEGATIVE": p.scores["NEGATIVE"], "POSITIVE": p.scores["POSITIVE"]})
        if on_rows:
            on_rows(len(chunk))
    if on_rows and errors:
        on_rows(len(errors))
    table = _input_table([r for _, r in good], [row_id for row_id, _ in good])
    table = table.append_column("predicted_sentiment", pa.array(labels, pa.string()))
    table = table.append_column("confidence", pa.array(confidences, pa.float64()))
    table = table.append_column("scores", pa.array(scores, pa.struct(
        [("NEGATIVE", pa.float64()), ("POSITIVE", pa.float64())])))
    name = f"part-{shard.index:05d}"
    if errors:
        # ASCII JSON: bytes that were not UTF-8 (lone surrogates here) and line separators
        # such as U+2028 inside a text become escapes, so every reader splits lines alike.
        write_atomically(output / "_errors" / f"{name}.jsonl", "".join(
            json.dumps(e, default=str) + "\n" for e in errors).encode())
    tmp = output / f".{name}.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, output / f"{name}.parquet")  # the shard counts as done from here on
    return {"shard": shard.index, "rows": len(good), "errors": len(errors)}


def _input_table(rows: list[dict], row_ids: list[int]):
    """The input columns (the union over rows, first-seen order) plus ``row_id``. A column
    whose values do not share one type is kept as text rather than dropped."""
    import pyarrow as pa

    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(k for k in row if k not in RESULT_COLUMNS))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    columns["row_id"] = pa.array(row_ids, pa.int64())
    return pa.table(columns)


def _check_manifest(options: BatchOptions, shards: list[Shard]) -> None:
    """A rerun must plan the same shards over the same input, or its parts would not fit;
    a run that wrote no part yet may be restarted with other settings."""
    manifest = {"input": str(Path(options.input).resolve()), "shard_rows": options.shard_rows,
                "text_column": options.text_column, "model": options.model,
                "shards": len(shards), "rows": sum(s.rows for s in shards)}
    path = options.output / MANIFEST
    if path.is_file() and any(options.output.glob("part-*.parquet")):
        previous = json.loads(path.read_text())
        changed = [k for k in manifest if previous.get(k) != manifest[k]]
        if changed:
            raise InputError(f"{options.output} holds a run with a different {', '.join(changed)}"
                             "; choose another --output or delete it to start over")
        return
    options.output.mkdir(parents=True, exist_ok=True)
    write_atomically(path, (json.dumps(manifest, indent=2) + "\n").encode())


def _check_text_column(shards: list[Shard], text_column: str) -> None:
    """Fail before any work when a CSV/TSV header or a Parquet schema lacks the column."""
    for shard in shards:
        if shard.format == "parquet":
            import pyarrow.parquet as pq

            names = tuple(pq.ParquetFile(shard.path).schema_arrow.names)
        elif shard.format in ("csv", "tsv"):
            names = shard.columns
        else:
            continue
        if text_column not in names:
            raise InputError(f"{shard.path}: no column {text_column!r}; it has "
                             f"{list(names)[:12]} (choose one with --text-column)")


def run_batch(options: BatchOptions) -> dict:
    """Score every pending shard; returns totals over the whole output (this run and before)."""
    from tqdm import tqdm

    if options.engine not in ("local", "ray"):
        raise InputError(f"engine {options.engine!r}; choose local or ray")
    options.output = Path(options.output)
    shards = plan(options.input, options.shard_rows)
    if options.engine == "ray" and len(shards) < options.num_actors:
        # A small input still keeps every actor busy: smaller shards, planned the same way
        # on a rerun (the manifest records the size used).
        rows = sum(s.rows for s in shards)
        options.shard_rows = max(1, math.ceil(rows / options.num_actors))
        shards = plan(options.input, options.shard_rows)
    _check_text_column(shards, options.text_column)
    _check_manifest(options, shards)
    pending = [s for s in shards
               if not (options.output / f"part-{s.index:05d}.parquet").is_file()]
    total = sum(s.rows for s in shards)
    bar = tqdm(total=total, initial=total - sum(s.rows for s in pending), unit=" rows",
               desc=f"batch ({options.engine})", disable=not options.progress, file=sys.stderr)
    started = time.perf_counter()
    if pending and options.engine == "local":
        from polarity.predictor import load_classifier

        predictor = load_classifier(options.model, options.load)
        for shard in pending:
            score_shard(predictor, shard, options.output, options.text_column,
                        options.batch_size, bar.update)
    elif pending:
        from polarity.batch_ray import run_on_ray

        for result in run_on_ray(options, pending):
            bar.update(result["rows"] + result["errors"])
    bar.close()
    return _summarise(options.output, shards, len(pending), time.perf_counter() - started)


def _summarise(output: Path, shards: list[Shard], scored: int, seconds: float) -> dict:
    """Totals from the parts on disk, and one ``errors.jsonl`` gathered from the shards."""
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(output / f"part-{s.index:05d}.parquet").metadata.num_rows
               for s in shards)
    folder = output / "_errors"
    parts = sorted(folder.glob("part-*.jsonl")) if folder.is_dir() else []
    errors = b"".join(p.read_bytes() for p in parts)
    write_atomically(output / "_errors.jsonl", errors)
    summary = {"input_rows": sum(s.rows for s in shards), "scored_rows": rows,
               "error_rows": errors.count(b"\n"), "shards": len(shards),
               "shards_scored_this_run": scored, "seconds_this_run": round(seconds, 1),
               "output": str(output)}
    write_atomically(output / "_SUCCESS.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary
