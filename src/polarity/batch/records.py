"""Records of a CSV, TSV or JSON-lines file, read from a byte offset up to another, and the
row each becomes: the one parser behind planning shards and reading them
(:mod:`polarity.batch.shards`), so that shards start exactly where records start.

No record is held past MAX_ROW_BYTES (:mod:`polarity.data.tables`) and no JSON line is parsed
past MAX_JSON_DEPTH levels: such a row is reported, and the next one read."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass

from polarity.data.tables import (
    MAX_ROW_BYTES,
    QUOTED,
    START,
    TOO_LARGE,
    RowTooLarge,
    allow_long_fields,
    csv_state_after,
)

#: Arrays and objects inside one another in a JSON line, the line's object counting as one:
#: deeper rows are reported, not parsed (Python's parser overflows its stack at ~1,000
#: levels, and Parquet refuses a schema nested much beyond 50).
MAX_JSON_DEPTH = 32


@dataclass(frozen=True)
class Unparsable:
    """A record the parser refused, with the text it was read from."""

    reason: str
    raw: str


def records(f, fmt: str, end: int | None = None
             ) -> Iterator[tuple[int, list | str | Unparsable]]:
    """``(byte offset after the record, record)`` for each non-blank record from the file's
    position up to ``end``. A record is a list of fields (CSV/TSV), a raw line (JSONL) or
    :class:`Unparsable`.

    Planning and reading both call this, so shards start exactly where records start: a
    stray quote opens a quoted field for the planner exactly as it does for the reader.
    CSV follows the csv module's strict rules (quoted fields may span lines; a quote left
    open at the end of the file, or text after a closing quote, is an error, not a guess),
    TSV has no quoting (IANA TSV, and the GLUE files, whose texts hold bare quotes)."""
    lines = _Lines(f, end, quoted=fmt == "csv")
    allow_long_fields()  # the same field size rule as every other reader (data/tables.py)
    parsed = lines if fmt == "jsonl" else csv.reader(
        lines, delimiter=_delimiter(fmt), strict=True,
        quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL)
    while True:
        lines.new_record()
        try:
            record = next(parsed)
        except StopIteration:
            return
        except csv.Error as exc:
            record = Unparsable(f"not a valid {fmt.upper()} record ({exc})",
                                "".join(lines.consumed))
        except RowTooLarge:
            record = Unparsable(f"the row is {TOO_LARGE}", lines.head)
        if isinstance(record, str) and not record.strip():
            continue  # a blank JSON line is not a record
        if record:  # nor is a blank CSV line
            yield lines.offset, record


class _Lines:
    """A binary file's lines from its position up to ``end``, decoded, with what the current
    record has consumed. A record that grows past MAX_ROW_BYTES (one JSON line, or a CSV
    record's lines) is never held whole: the rest of the record is skipped and
    :class:`RowTooLarge` raised; the next record starts after it, where the csv module would
    have started it (:func:`polarity.data.tables.csv_state_after`)."""

    HEAD = 200  # characters of a too-large row kept for the error report

    def __init__(self, f, end: int | None, quoted: bool = False):
        self.f, self.end, self.offset, self.quoted = f, end, f.tell(), quoted
        self.consumed: list[str] = []
        self.size, self.head = 0, ""

    def new_record(self) -> None:
        self.consumed.clear()
        self.size = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.end is not None and self.offset >= self.end:
            raise StopIteration
        raw = self.f.readline(MAX_ROW_BYTES + 1 - self.size)
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        self.size += len(raw)
        if self.size > MAX_ROW_BYTES:
            self.head = ("".join(self.consumed) + _decode(raw[:self.HEAD * 4]))[:self.HEAD]
            self._skip_rest(raw)
            raise RowTooLarge(TOO_LARGE)
        self.consumed.append(_decode(raw))
        return self.consumed[-1]

    def _skip_rest(self, raw: bytes) -> None:
        """Read past the record's end, a chunk at a time (a CSV record that went on past its
        first line is in a quoted field where it crossed the limit)."""
        state = (QUOTED if self.consumed else START) if self.quoted else None
        while raw:
            if state is not None:
                state = csv_state_after(raw, state, strict=True)
            if state is None and raw.endswith(b"\n"):
                return
            raw = self.f.readline(1 << 20)
            self.offset += len(raw)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def _delimiter(fmt: str) -> str:
    return "\t" if fmt == "tsv" else ","


def text_bytes(row: dict) -> int:
    """The UTF-8 bytes of a Parquet row's text and binary values."""
    return sum(len(v.encode("utf-8", "surrogatepass")) if isinstance(v, str) else len(v)
               for v in row.values() if isinstance(v, str | bytes))


def preview(row: dict, limit: int = _Lines.HEAD) -> dict:
    """A too-large row as the error report shows it: long values cut to their start."""
    def cut(value):
        if isinstance(value, str | bytes) and len(value) > limit:
            return value[:limit] + ("..." if isinstance(value, str) else b"...")
        return value

    return {key: cut(value) for key, value in row.items()}


def row_of(record: list | str | Unparsable, fmt: str, columns: tuple[str, ...]
           ) -> tuple[dict | None, str | None]:
    """One parsed record as a row (a CSV/TSV record's fields named by ``columns``), or the
    reason it is not one."""
    if isinstance(record, Unparsable):
        return None, record.reason
    if fmt == "jsonl":
        try:
            row = json.loads(record, object_pairs_hook=_no_repeats)
        except json.JSONDecodeError as exc:
            return None, f"invalid JSON: {exc.msg}"
        except RecursionError:
            return None, _TOO_DEEP
        except _Repeated as exc:
            return None, (f"key {exc.args[0]!r} appears twice in the object (one value would "
                          "be lost)")
        if not isinstance(row, dict):
            return None, "a JSON line must be an object"
        if _depth_over(row, MAX_JSON_DEPTH):
            return None, _TOO_DEEP
    elif len(record) != len(columns):
        return None, f"{len(record)} fields where the header has {len(columns)}"
    else:
        row = dict(zip(columns, record, strict=True))
    bad = next((k for k, v in row.items() if isinstance(v, str) and _undecodable(v)), None)
    if bad is not None:
        return None, f"column {bad!r} holds bytes that are not UTF-8 text (binary data?)"
    return row, None


_TOO_DEEP = (f"JSON nested more than {MAX_JSON_DEPTH} levels deep (arrays or objects inside "
             "one another); flatten the row")


def _depth_over(value: object, limit: int) -> bool:
    """Whether ``value`` nests lists and dicts more than ``limit`` levels (without recursion:
    the value may be as deep as the parser allows)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class _Repeated(ValueError):
    pass


def _no_repeats(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Repeated(key)
        out[key] = value
    return out


def _undecodable(text: str) -> bool:
    # Bytes that are not UTF-8 were decoded as lone surrogates (surrogateescape). A NUL is
    # a character like any other: the contract's rule for texts (polarity.contract).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
