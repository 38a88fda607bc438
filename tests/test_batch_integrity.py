"""Every input row of `polarity batch` is scored once or reported once, whatever the file
holds: stray quotes, quoted newlines, empty rows, binary junk, a byte-order mark, CRLF."""

import csv
import io
import json
import re

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from polarity.batch import BatchOptions, run_batch

pytest.importorskip("vaderSentiment")

WORDS = ["good", "bad", "fine", "great phone, love it", "meh", 'say "hi"', "dull"]
FIELD = st.one_of(
    st.sampled_from(WORDS),
    st.just(""),
    st.sampled_from(['"open', 'mid"quote', '""', '"a,b"', "two\nlines", "tab\there"]),
    st.binary(min_size=1, max_size=6).map(lambda b: b.replace(b"\r", b"").decode("latin-1")),
)


def encode(rows: list[list[str]], fmt: str, bom: bool, crlf: bool) -> bytes:
    end = "\r\n" if crlf else "\n"
    if fmt == "jsonl":
        lines = [json.dumps({"id": r[0], "text": r[-1]}) if i % 4 else "{" + r[-1]
                 for i, r in enumerate(rows)]
        text = "".join(line + end for line in lines)
    else:
        sep = "\t" if fmt == "tsv" else ","
        text = "".join(sep.join(r) + end for r in [["id", "text"], *rows])
    data = text.encode("utf-8", "surrogateescape").replace(b"\xc2\x80", b"\xff")
    return (b"\xef\xbb\xbf" if bom else b"") + data


def reference_rows(data: bytes, fmt: str) -> int:
    """The number of records the csv module (or a line split) finds in the whole file, under
    the strict rules the batch reader documents (text after a closing quote is an error)."""
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)
    if fmt == "jsonl":
        return sum(1 for line in lines if line.strip())
    quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
    reader = csv.reader(lines, delimiter="\t" if fmt == "tsv" else ",", quoting=quoting,
                        strict=True)
    count = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return count - 1  # the header
        except csv.Error:
            count += 1
            continue
        count += bool(record)


def scored_ids(out) -> list[int]:
    parts = sorted(out.glob("part-*.parquet"))
    return [i for p in parts for i in pq.read_table(p).column("row_id").to_pylist()]


def error_ids(out) -> list[int]:
    return [json.loads(line)["row_id"] for line in
            (out / "_errors.jsonl").read_text().splitlines()]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(FIELD, min_size=1, max_size=3), max_size=14),
       fmt=st.sampled_from(["csv", "tsv", "jsonl"]), bom=st.booleans(), crlf=st.booleans(),
       shard_rows=st.integers(1, 5))
# Text after a closing quote ends the record as an error, and the next line is a row of its
# own (a lenient reader would read on to the end of the file in an open quote).
@example(rows=[['"open', '"open', '"open'], ["good", ""]], fmt="csv", bom=False, crlf=False,
         shard_rows=1)
def test_every_row_is_scored_or_reported_exactly_once(tmp_path_factory, rows, fmt, bom, crlf,
                                                      shard_rows):
    folder = tmp_path_factory.mktemp("integrity")
    rows = [(r + ["", ""])[:2] if i % 5 else r for i, r in enumerate(rows)]  # some ragged
    data = encode(rows, fmt, bom, crlf)
    source = folder / f"in.{fmt}"
    source.write_bytes(data)
    expected = reference_rows(data, fmt)
    if expected <= 0:
        return
    outputs = []
    for size in (shard_rows, 1000):
        out = folder / f"out-{size}"
        try:
            summary = run_batch(BatchOptions(model="vader", input=source, output=out,
                                             shard_rows=size, progress=False))
        except Exception as exc:  # only "no row could be scored" may stop a run
            assert "no row" in str(exc), exc
            return
        ids = scored_ids(out) + error_ids(out)
        assert sorted(ids) == list(range(expected))  # each row once, at its position
        assert summary["input_rows"] == expected
        assert summary["scored_rows"] + summary["error_rows"] == expected
        outputs.append((scored_ids(out), error_ids(out)))
    assert outputs[0][0] == sorted(outputs[1][0])  # shard size changes nothing
    assert sorted(outputs[0][1]) == sorted(outputs[1][1])


def test_a_stray_quote_does_not_corrupt_the_plan(tmp_path):
    source = tmp_path / "t.csv"
    source.write_bytes(b'id,text,label\nr0,good,1\nr1,\x00\xff"A,1\nr2,bad,0\n,,\n'
                       b"r3,fine,1\nr4,dull,0\n")
    out = tmp_path / "o"
    summary = run_batch(BatchOptions(model="vader", input=source, output=out, shard_rows=2,
                                     progress=False))
    assert (summary["input_rows"], summary["scored_rows"], summary["error_rows"]) == (6, 4, 2)
    assert scored_ids(out) == [0, 2, 4, 5] and error_ids(out) == [1, 3]
    errors = [json.loads(line) for line in (out / "_errors.jsonl").read_text().splitlines()]
    assert "not UTF-8" in errors[0]["error"] and errors[0]["row"][0] == "r1"
    assert "empty" in errors[1]["error"]


def test_rows_swallowed_by_an_open_quote_are_reported_with_what_was_read(tmp_path):
    source = tmp_path / "t.csv"
    source.write_text('id,text\n1,"broken start\n2,great phone, love it\n3,fine\n')
    out = tmp_path / "o"
    summary = run_batch(BatchOptions(model="vader", input=source, output=out, progress=False))
    errors = [json.loads(line) for line in (out / "_errors.jsonl").read_text().splitlines()]
    assert summary["input_rows"] == 1 and summary["error_rows"] == 1
    assert "great phone, love it" in errors[0]["row"]  # not lost: shown in the report
    assert "unexpected end of data" in errors[0]["error"]


def test_a_mistyped_text_column_fails_before_writing_and_the_rerun_works(tmp_path):
    source = tmp_path / "t.csv"
    source.write_text("id,text\n1,good\n2,bad\n")
    out = tmp_path / "o"
    with pytest.raises(Exception, match="no column 'txt'"):
        run_batch(BatchOptions(model="vader", input=source, output=out, text_column="txt",
                               progress=False))
    summary = run_batch(BatchOptions(model="vader", input=source, output=out, progress=False))
    assert summary["scored_rows"] == 2


def test_a_rerun_after_a_kill_changes_nothing(tmp_path):
    source = tmp_path / "t.csv"
    source.write_text("id,text\n" + "".join(f"{i},good {i}\n" for i in range(20)) + "20,\n")
    out = tmp_path / "o"
    options = BatchOptions(model="vader", input=source, output=out, shard_rows=6,
                           progress=False)
    first = run_batch(options)
    parts = {p.name: p.read_bytes() for p in out.glob("part-*.parquet")}
    (out / "part-00001.parquet").unlink()  # killed before this part was renamed into place
    (out / ".part-00001.parquet.tmp").write_bytes(b"half a file")
    second = run_batch(options)
    assert {p.name: p.read_bytes() for p in out.glob("part-*.parquet")} == parts
    assert second["scored_rows"] == first["scored_rows"] == 20
    assert second["error_rows"] == first["error_rows"] == 1
    assert io.BytesIO(parts["part-00000.parquet"]).getvalue()  # the parts are real files


def read_parts(out):
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))],
                            promote_options="default").sort_by("row_id").to_pylist()


def test_input_columns_named_like_output_columns_are_renamed_not_dropped(tmp_path, capsys):
    source = tmp_path / "t.csv"
    source.write_text("row_id,confidence,tier,text\nA7,high,gold,good\nB9,low,tin,bad\n")
    out = tmp_path / "o"
    run_batch(BatchOptions(model="vader", input=source, output=out, progress=False))
    rows = read_parts(out)
    assert [r["input_row_id"] for r in rows] == ["A7", "B9"]
    assert [r["input_confidence"] for r in rows] == ["high", "low"]
    assert [r["input_tier"] for r in rows] == ["gold", "tin"]
    assert [r["row_id"] for r in rows] == [0, 1] and rows[0]["tier"] == "baseline"
    assert "'confidence' is written as 'input_confidence'" in capsys.readouterr().err


def test_a_header_with_a_column_twice_is_refused(tmp_path):
    from polarity.errors import InputError

    source = tmp_path / "t.csv"
    source.write_text("text,note,note\ngood,a,b\n")
    with pytest.raises(InputError, match=r"\['note'\] more than once"):
        run_batch(BatchOptions(model="vader", input=source, output=tmp_path / "o",
                               progress=False))


def test_a_json_key_given_twice_is_reported_not_overwritten(tmp_path):
    source = tmp_path / "t.jsonl"
    source.write_text('{"text": "good", "text": "bad"}\n{"text": "fine"}\n')
    out = tmp_path / "o"
    summary = run_batch(BatchOptions(model="vader", input=source, output=out, progress=False))
    assert (summary["scored_rows"], summary["error_rows"]) == (1, 1)
    error = json.loads((out / "_errors.jsonl").read_text().splitlines()[0])
    assert "'text' appears twice" in error["error"] and error["row_id"] == 0


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_byte_order_mark_is_not_part_of_the_first_row(tmp_path, fmt):
    source = tmp_path / f"t.{fmt}"
    body = '{"text": "good"}\n' if fmt == "jsonl" else "text\ngood\n"
    source.write_bytes(b"\xef\xbb\xbf" + body.encode())
    out = tmp_path / "o"
    summary = run_batch(BatchOptions(model="vader", input=source, output=out, progress=False))
    assert summary["error_rows"] == 0 and read_parts(out)[0]["text"] == "good"


def test_long_fields_and_nul_follow_the_same_rules_as_everywhere_else(tmp_path):
    from polarity.contract import check_texts

    long = "good " * 40_000  # 200 KB: over the csv module's 128 KiB default
    nul = "good\x00movie"
    check_texts([long, nul])  # the contract accepts both, as the service does
    source = tmp_path / "t.csv"
    with open(source, "w", newline="") as f:
        csv.writer(f).writerows([["text"], [long], [nul]])
    out = tmp_path / "o"
    summary = run_batch(BatchOptions(model="vader", input=source, output=out, progress=False))
    assert (summary["scored_rows"], summary["error_rows"]) == (2, 0)
    assert [r["text"] for r in read_parts(out)] == [long, nul]
