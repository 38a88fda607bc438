import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polarity.data.tables import iter_rows, table_format
from polarity.errors import InputError


def test_every_row_comes_back_with_its_line_or_its_problem(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "good"}\n\n[1, 2]\n{broken\n{"text": "bad"}\n')
    rows = list(iter_rows(path))
    assert [(r.line, r.fields, r.problem and r.problem.split(":")[0]) for r in rows] == [
        (1, {"text": "good"}, None), (3, None, "not a JSON object"), (4, None, "not valid JSON"),
        (5, {"text": "bad"}, None)]


def test_delimited_rows_and_their_header(tmp_path):
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt", newline="") as f:
        f.write('text,label\n"great, really",1\nbad,0,extra\n')
    assert table_format(path) == "csv"
    rows = list(iter_rows(path, required=("text", "label")))
    assert rows[0].fields == {"text": "great, really", "label": "1"}
    assert (rows[1].line, rows[1].problem) == (3, "more fields than the header")
    with pytest.raises(InputError, match=r"column\(s\) \['review'\] not found.*Use --flag"):
        list(iter_rows(path, required=("review",), hint="Use --flag."))


def test_tsv_reads_bare_quotes_as_text(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text('sentence\tlabel\nit \'s a "gem\t1\n')
    assert next(iter_rows(path)).fields == {"sentence": 'it \'s a "gem', "label": "1"}


def test_json_nested_past_the_parsers_stack_is_a_bad_row(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + '}\n{"text": "good"}\n')
    rows = list(iter_rows(path))
    assert (rows[0].line, rows[0].problem) == (1, "not valid JSON: nested too deeply")
    assert rows[1].fields == {"text": "good"}


def test_a_quoted_csv_row_past_the_limit_is_skipped_whole(tmp_path):
    from polarity.data.tables import MAX_ROW_BYTES, TOO_LARGE

    spread = "\n".join(['say ""y""' * 100] * (MAX_ROW_BYTES // 900 + 5))  # 1 MiB, many lines
    path = tmp_path / "t.csv"
    path.write_text(f'text,label\ngood,1\n"{spread}",0\nbad,0\n')
    rows = list(iter_rows(path))
    assert [r.fields for r in rows] == [{"text": "good", "label": "1"}, None,
                                        {"text": "bad", "label": "0"}]
    assert rows[1].problem == TOO_LARGE


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet='a",\r\n', max_size=40), strict=st.booleans(),
       as_bytes=st.booleans())
def test_csv_state_after_ends_a_record_where_the_csv_module_does(text, strict, as_bytes):
    """The reader of rows too large to hold skips to where the parser would have ended the
    row: the first record of any line sequence spans the same lines by either."""
    import csv
    import re

    from polarity.data.tables import START, csv_state_after

    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # as batch reads them: split at \n only
    if not lines:
        return
    taken = []

    def feed():
        for line in lines:
            taken.append(line)
            yield line

    reader = csv.reader(feed(), strict=strict)
    try:
        next(reader)
    except (StopIteration, csv.Error):
        pass
    state, spans = START, len(lines)
    for n, line in enumerate(lines, 1):
        state = csv_state_after(line.encode() if as_bytes else line, state, strict)
        if state is None:
            spans = n
            break
    assert spans == len(taken)
