"""Scoring one shard into its Parquet part and its error file, atomically: a shard is done
exactly when its part exists."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from polarity.batch.shards import Shard, read_shard
from polarity.contract import PREDICTION_FIELDS, text_problem
from polarity.folders import write_atomically

#: What each output row gets besides its input columns (``reasoning`` is never asked for).
RESULT_COLUMNS = ("row_id", *(c for c in PREDICTION_FIELDS if c != "reasoning"))


def result_types() -> dict:
    import pyarrow as pa

    return {"predicted_sentiment": pa.string(), "confidence": pa.float64(),
            "scores": pa.struct([("NEGATIVE", pa.float64()), ("POSITIVE", pa.float64())]),
            "windows": pa.int32(), "tier": pa.string(), "escalation": pa.string()}


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
            elif text_problem(text):
                error = f"column {text_column!r} {text_problem(text)}"
        if error is not None:
            errors.append({"row_id": row_id, "file": shard.path, "error": error,
                           "row": row})
        else:
            good.append((row_id, row))
    answers = []
    for start in range(0, len(good), batch_size * 8):
        chunk = good[start:start + batch_size * 8]
        answers += [p.to_json() for p in predictor.predict([r[text_column] for _, r in chunk],
                                                           batch_size=batch_size)]
        if on_rows:
            on_rows(len(chunk))
    if on_rows and errors:
        on_rows(len(errors))
    table = _input_table([r for _, r in good], [row_id for row_id, _ in good])
    for name, kind in result_types().items():
        table = table.append_column(name, pa.array([a[name] for a in answers], kind))
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


def output_name(column: str) -> str:
    """An input column's name in the output: ``input_<name>`` when the output has a column
    of its own by that name (``row_id``, ``confidence`` ...), so that neither is lost."""
    while column in RESULT_COLUMNS:
        column = f"input_{column}"
    return column


def _input_table(rows: list[dict], row_ids: list[int]):
    """The input columns (the union over rows, first-seen order, renamed by
    :func:`output_name`) plus ``row_id``. A column whose values do not share one type is
    kept as text rather than dropped."""
    import pyarrow as pa

    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        name = output_name(name)
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    columns["row_id"] = pa.array(row_ids, pa.int64())
    return pa.table(columns)
