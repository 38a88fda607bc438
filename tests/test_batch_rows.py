"""`polarity batch` on rows built to break a reader: nested JSON deeper than any parser's
stack, fields and lines far larger than a row may be. Each such row is reported in
``_errors.jsonl`` and every other row is scored, once."""

import json

import pyarrow.parquet as pq
import pytest

from polarity.batch import BatchOptions, run_batch
from polarity.batch.shards import MAX_JSON_DEPTH

pytest.importorskip("vaderSentiment")


def run(tmp_path, source):
    out = tmp_path / "out"
    summary = run_batch(BatchOptions(model="vader", input=source, output=out, shard_rows=2,
                                     progress=False))
    errors = [json.loads(line) for line in (out / "_errors.jsonl").read_text().splitlines()]
    scored = sorted(i for p in out.glob("part-*.parquet")
                    for i in pq.read_table(p).column("row_id").to_pylist())
    return summary, errors, scored


def test_json_nested_100000_deep_is_reported_and_the_rest_scored(tmp_path):
    deep = '{"text": "fine", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    parquet_deep = json.dumps({"text": "fine", "x": _nested(MAX_JSON_DEPTH + 5)})
    ok = json.dumps({"text": "fine", "x": _nested(MAX_JSON_DEPTH - 1)})
    lines = [json.dumps({"text": "good"}), deep, parquet_deep, ok, json.dumps({"text": "bad"})]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    summary, errors, scored = run(tmp_path, tmp_path / "in.jsonl")
    assert scored == [0, 3, 4] and summary["scored_rows"] == 3
    assert [e["row_id"] for e in errors] == [1, 2]
    assert all("nested more than" in e["error"] for e in errors)


def _nested(depth: int) -> list:
    """A list ``depth`` levels deep inside the row (which is one level itself)."""
    value: list = []
    for _ in range(depth - 2):
        value = [value]
    return value
