"""`polarity batch` on rows built to break a reader: nested JSON deeper than any parser's
stack, fields and lines far larger than a row may be. Each such row is reported in
``_errors.jsonl`` and every other row is scored, once."""

import json

import pyarrow.parquet as pq
import pytest

from polarity.batch import BatchOptions, run_batch
from polarity.batch.records import MAX_JSON_DEPTH

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


def peak_traced_mb(fn) -> float:
    """Peak Python memory of ``fn()`` in MB, after a run over a small file has done the
    imports a run needs (that run peaks at ~3 MB: the VADER lexicon)."""
    import tempfile
    import tracemalloc
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "in.csv").write_text("id,text\n0,good\n")
        (Path(folder) / "in.jsonl").write_text('{"text": "good"}\n')
        run_batch(BatchOptions(model="vader", input=folder, output=Path(folder) / "out",
                               progress=False))
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_rows_past_max_row_bytes_are_reported_never_read_whole(tmp_path):
    import csv

    from polarity.data.tables import MAX_ROW_BYTES

    big = "x" * (10 * 2**20)  # a 10 MB field, on one line
    spread = "\n".join(["y" * 1000] * (MAX_ROW_BYTES // 1000 + 10))  # 1 MiB over many lines
    with open(tmp_path / "in.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerows([["id", "text"], [0, "good"], [1, big], [2, "fine"], [3, spread],
                     [4, "bad"]])
    out = tmp_path / "out"
    peak = peak_traced_mb(lambda: run_batch(BatchOptions(
        model="vader", input=tmp_path / "in.csv", output=out, shard_rows=2, progress=False)))
    # Bounded by MAX_ROW_BYTES a few times over (the csv module's field buffer takes 4 bytes
    # a character); reading the 10 MB row whole took 60 MB.
    assert peak < 12
    errors = [json.loads(line) for line in (out / "_errors.jsonl").read_text().splitlines()]
    assert [e["row_id"] for e in errors] == [1, 3]
    assert all("larger than 1,048,576 bytes" in e["error"] and len(e["row"]) <= 200
               for e in errors)
    scored = sorted(i for p in out.glob("part-*.parquet")
                    for i in pq.read_table(p).column("row_id").to_pylist())
    assert scored == [0, 2, 4]
    names = {p.name for p in out.rglob("*")}
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]


def test_a_huge_json_line_or_parquet_text_is_reported(tmp_path):
    import pyarrow as pa

    lines = [json.dumps({"text": "good"}), json.dumps({"text": "z" * 30 * 2**20}),
             json.dumps({"text": "bad"})]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    pq.write_table(pa.table({"text": ["fine", "w" * (2 * 2**20), "awful"]}),
                   tmp_path / "b.parquet")
    peak = peak_traced_mb(lambda: run(tmp_path, tmp_path))
    summary, errors, scored = run(tmp_path, tmp_path)
    assert peak < 16
    assert scored == [0, 2, 3, 5] and [e["row_id"] for e in errors] == [1, 4]
    assert len(errors[0]["row"]) <= 200 and errors[1]["row"]["text"].endswith("...")


def test_a_large_csv_row_with_bare_quotes_ends_where_the_parser_ends_it(tmp_path):
    """A bare quote in a plain field is text to the csv module: the reader skipping a row
    too large to hold must not read it as an opening quote and swallow the rows after it."""
    big = 'a "quoted" word, a bare " one ' * 40_000 + '"'  # 1.2 MB, an odd count of "
    (tmp_path / "in.csv").write_text(f"id,text\n0,good\n1,{big.replace(',', ';')}\n2,fine\n"
                                     "3,bad\n")
    summary, errors, scored = run(tmp_path, tmp_path / "in.csv")
    assert scored == [0, 2, 3] and [e["row_id"] for e in errors] == [1]
