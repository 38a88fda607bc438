"""The passes of ``polarity batch``: ``score`` (a shard read, scored and written as its part,
:mod:`polarity.batch.scoring`) and, for a cascade, ``escalate``, the second pass: the fast
stage has scored every row into ``_fast/part-NNNNN.parquet``; here each part's rows that the
cascade sends on (its one routing rule, :func:`polarity.backends.cascade.needs_second`) are
scored again by the accurate stage and the final part is written, atomically, with every
row once and its tier. A million-row job thus pays the accurate tier only for its hard
share, and a rerun after a stop continues in whichever pass it was."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from polarity.backends.cascade import ESCALATED, NOT_NEEDED, needs_second
from polarity.batch.scoring import result_types, score_shard
from polarity.batch.shards import Shard

FAST_DIR = "_fast"


def escalate_part(predictor, name: str, fast: Path, output: Path, threshold: float,
                  text_column: str, batch_size: int,
                  on_rows: Callable[[int], None] | None = None) -> dict:
    """``fast/name.parquet`` -> ``output/name.parquet`` with the hard rows re-scored."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(fast / f"{name}.parquet")
    p = [s["POSITIVE"] for s in table.column("scores").to_pylist()]
    hard = np.flatnonzero(needs_second(p, threshold)).tolist() if p else []
    answers = {c: table.column(c).to_pylist() for c in result_types()}
    answers["escalation"] = [NOT_NEEDED] * len(p)
    texts = table.column(text_column).to_pylist() if hard else []
    for start in range(0, len(hard), batch_size * 8):
        chunk = hard[start:start + batch_size * 8]
        preds = predictor.predict([texts[i] for i in chunk], batch_size=batch_size)
        for i, pred in zip(chunk, preds, strict=True):
            for key, value in {**pred.to_json(), "escalation": ESCALATED}.items():
                if key in answers:
                    answers[key][i] = value
        if on_rows:
            on_rows(len(chunk))
    for column, kind in result_types().items():
        table = table.set_column(table.schema.get_field_index(column), column,
                                 pa.array(answers[column], kind))
    errors = fast / "_errors" / f"{name}.jsonl"
    if errors.is_file():  # the shard's bad rows, reported once, beside the final part
        (output / "_errors").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(errors, output / "_errors" / f"{name}.jsonl")
    tmp = output / f".{name}.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, output / f"{name}.parquet")  # the shard counts as done from here on
    return {"rows": len(p), "escalated": len(hard)}


def work_on_shard(predictor, mode: str, shard: Shard, output: Path, options,
                  threshold: float, on_rows=None) -> dict:
    """One shard of one pass: ``score`` (read, score, write) or ``escalate``."""
    if mode == "score":
        return score_shard(predictor, shard, output, options.text_column, options.batch_size,
                           on_rows)
    name = f"part-{shard.index:05d}"
    done = escalate_part(predictor, name, output / FAST_DIR, output, threshold,
                         options.text_column, options.batch_size)
    if on_rows:
        on_rows(shard.rows)
    return {"shard": shard.index, "rows": done["rows"], "errors": shard.rows - done["rows"]}
