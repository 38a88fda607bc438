"""``polarity batch``: score files too large for memory, locally or on Ray, resumably.

The input is planned into shards (:mod:`polarity.batch.shards`); each shard becomes one
``part-NNNNN.parquet`` (input columns, ``row_id``, ``predicted_sentiment``, ``confidence``,
``scores``) written atomically, plus ``_errors/part-NNNNN.jsonl`` for its bad rows (names
starting with ``_`` keep pyarrow, pandas and Spark reading the folder as one Parquet data
set). A shard is done exactly when its Parquet file exists, so a rerun after a crash skips
finished shards (saying how much was done) and every row ends up in the output exactly once.
The run's manifest (:mod:`polarity.batch.manifest`) refuses a rerun over other settings or an
input whose content changed, unless ``restart`` deletes the earlier run's files first.

Engines: ``local`` scores shards in this process; ``ray`` sends shard descriptions through
Ray Data ``map_batches`` to a fixed pool of actors that each load the model once and write
their shards (the output folder must then be shared storage on a cluster).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from polarity.batch.manifest import (
    announce_resume,
    check_or_record,
    clear_run,
    has_parts,
    previous_run,
)
from polarity.batch.options import BatchOptions
from polarity.batch.passes import FAST_DIR, work_on_shard
from polarity.batch.shards import Shard, auto_plan, plan
from polarity.errors import InputError
from polarity.folders import write_atomically


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


def _announce_renames(shards: list[Shard]) -> None:
    from polarity.batch.scoring import output_name

    seen = set()
    for shard in shards:
        names = shard.columns
        if shard.format == "parquet":
            import pyarrow.parquet as pq

            names = tuple(pq.ParquetFile(shard.path).schema_arrow.names)
        for name in names:
            if output_name(name) != name and name not in seen:
                seen.add(name)
                print(f"polarity batch: input column {name!r} is written as "
                      f"{output_name(name)!r}: the output has a {name!r} column of its own",
                      file=sys.stderr)


def run_batch(options: BatchOptions) -> dict:
    """Score every pending shard; returns totals over the whole output (this run and before)."""
    if options.engine not in ("local", "ray"):
        raise InputError(f"engine {options.engine!r}; choose local or ray")
    options.output = Path(options.output)
    previous = previous_run(options.output)
    if options.restart and previous is not None:
        print(f"polarity batch: --restart: deleted {clear_run(options.output)} file(s) of the "
              f"earlier run in {options.output}", file=sys.stderr)
        previous = None
    elif previous is None and options.output.is_dir() and not has_parts(options.output):
        clear_run(options.output)  # a run that finished no part: its error files are stale
    # A rerun keeps the shards its first run planned (its manifest says their size).
    options.shard_rows = options.shard_rows or (previous or {}).get("shard_rows")
    if options.shard_rows:
        shards = plan(options.input, options.shard_rows)
    else:
        shards, options.shard_rows = auto_plan(options.input)
    if options.engine == "ray" and len(shards) < options.num_actors:
        # A small input still keeps every actor busy: smaller shards, planned the same way
        # on a rerun (the manifest records the size used).
        rows = sum(s.rows for s in shards)
        options.shard_rows = max(1, math.ceil(rows / options.num_actors))
        shards = plan(options.input, options.shard_rows)
    _check_text_column(shards, options.text_column)
    _announce_renames(shards)
    check_or_record(options, shards, previous)
    pending = [s for s in shards if not _part(options.output, s).is_file()]
    started = time.perf_counter()
    cascade = cascade_stages(options.model)
    fast_only = 0 if cascade is None else sum(
        _part(options.output / FAST_DIR, s).is_file() for s in pending)
    announce_resume(shards, pending, fast_only)
    if cascade is None:
        _run_pass(options, options.model, pending, options.output, "score", total=shards)
    else:  # two passes: the fast stage over every row, then the accurate one over the hard
        first, second, threshold = cascade
        fast = options.output / FAST_DIR
        fast.mkdir(parents=True, exist_ok=True)
        _run_pass(options, first, [s for s in pending if not _part(fast, s).is_file()], fast,
                  "score", total=pending, label="fast")
        _run_pass(options, second, pending, options.output, "escalate", total=pending,
                  label="accurate", threshold=threshold)
    return _summarise(options.output, shards, len(pending), time.perf_counter() - started)


def _part(folder: Path, shard: Shard) -> Path:
    return folder / f"part-{shard.index:05d}.parquet"


def cascade_stages(model: str) -> tuple[str, str, float] | None:
    """A cascade's stages and threshold, unloaded (None for other models)."""
    from polarity.backends.cascade import stages_of
    from polarity.modelcard import CARD_NAME, read_card
    from polarity.predictor import resolve_model

    folder = resolve_model(model)
    if not isinstance(folder, Path) or not (folder / CARD_NAME).is_file():
        return None
    card = read_card(folder)
    return stages_of(folder, card) if card.backend == "cascade" else None


def _run_pass(options: BatchOptions, model: str, todo: list[Shard], output: Path, mode: str,
              total: list[Shard], label: str | None = None, threshold: float = 0.0) -> None:
    """Score (or, ``escalate``: re-score a fast part's hard rows of) every shard of ``todo``
    with ``model`` into ``output``, locally or on Ray; the bar counts rows of ``total``."""
    from tqdm import tqdm

    rows = sum(s.rows for s in total)
    desc = f"batch ({options.engine}{', ' + label if label else ''})"
    bar = tqdm(total=rows, initial=rows - sum(s.rows for s in todo), unit=" rows", desc=desc,
               disable=not options.progress, file=sys.stderr)
    if todo and options.engine == "local":
        from polarity.predictor import load_classifier

        predictor = load_classifier(model, options.load)
        for shard in todo:
            work_on_shard(predictor, mode, shard, output, options, threshold, bar.update)
    elif todo:
        from polarity.batch.on_ray import run_on_ray

        for result in run_on_ray(options, todo, model, output, mode, threshold):
            bar.update(result["rows"] + result["errors"])
    bar.close()


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
