"""Rows of a CSV, TSV or JSON-lines file, the one reader behind `polarity prepare`'s file
sources, `polarity evaluate`'s test files and training's prepared splits (`polarity batch`
plans shards with its own streaming parser, batch/records.py, because it must also find each
row's byte offset).

Each row comes with its line number and either a mapping or the reason it is unusable, so every
caller can report bad rows the same way instead of dropping them. No row is read whole when it
is larger than :data:`MAX_ROW_BYTES`: memory stays bounded whatever a file (or a gzip bomb)
holds, and the row is reported like any other bad one."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

from polarity.errors import InputError

TableFormat = Literal["csv", "tsv", "jsonl"]
T = TypeVar("T")

#: The largest row every reader accepts (prepare's sources, evaluate's test files, batch's
#: shards): a review of a few thousand words is ~30 KB, so 1 MiB is room for any text while a
#: 1 GB line, a 10 MB field or a gzip bomb costs at most this much memory, then is reported.
MAX_ROW_BYTES = 1 << 20
TOO_LARGE = f"larger than {MAX_ROW_BYTES:,} bytes (MAX_ROW_BYTES); a row is one text"


class RowTooLarge(Exception):
    """A row past :data:`MAX_ROW_BYTES`, raised by :class:`BoundedLines` after it skipped the
    rest of the row's line; the next call goes on with the next line."""


#: Where the csv module's parser stands inside a record (QUOTE_MINIMAL, quotes doubled, no
#: escape character): at a field's start, in a plain field, in a quoted one, or just after a
#: quote inside a quoted field (the next character says whether it closed the field).
START, FIELD, QUOTED, CLOSING = range(4)


def csv_state_after(chunk: str | bytes, state: int, strict: bool) -> int | None:
    """The parser's state after ``chunk`` (a piece of one line) from ``state``, or None when
    the record ends with the line that holds ``chunk``: a line end outside quotes, or an error
    (``strict``: text after a closing quote), after which the parser drops the rest of the
    line. Jumps from one quote, comma or line end to the next, so a long line costs little.
    Only for finding where a row too large to hold ends, exactly where the parser would."""
    quote, comma, cr, lf = ('"', ",", "\r", "\n") if isinstance(chunk, str) else \
        (b'"', b",", b"\r", b"\n")
    i, n, line_end = 0, len(chunk), -1
    while i < n:
        if state == QUOTED:
            j = chunk.find(quote, i)
            if j < 0:
                return QUOTED
            state, i = CLOSING, j + 1
        elif state == CLOSING:
            c = chunk[i:i + 1]
            if c in (quote, comma):
                state = QUOTED if c == quote else START
            elif c in (cr, lf) or strict:
                return None
            else:
                state = FIELD
            i += 1
        elif state == START and chunk[i:i + 1] == quote:
            state, i = QUOTED, i + 1
        else:  # a plain field: quotes inside it are text
            if line_end < i:
                ends = [j for j in (chunk.find(cr, i), chunk.find(lf, i)) if j >= 0]
                line_end = min(ends) if ends else n
            j = chunk.find(comma, i)
            if line_end < n and (j < 0 or line_end < j):
                return None
            if j < 0:
                return FIELD
            state, i = START, j + 1
    return state


class Row(NamedTuple):
    line: int
    fields: dict | None  # None when the row is unusable
    problem: str | None = None


def table_format(path: str | Path) -> TableFormat:
    """The format a file's name says (``.csv``, ``.tsv``, anything else JSON lines; ``.gz``
    ignored)."""
    suffix = Path(Path(path).name.lower().removesuffix(".gz")).suffix
    return "csv" if suffix == ".csv" else "tsv" if suffix == ".tsv" else "jsonl"


def open_text(path: str | Path, encoding: str = "utf-8") -> io.TextIOBase:
    """Open a text file, gzip or plain, replacing undecodable bytes rather than failing."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder: name each file as its own source")
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, errors="replace",
                                newline="")
    return open(path, encoding=encoding, errors="replace", newline="")


class BoundedLines:
    """The lines of an open text file, read so that no row (one line, or the lines of a CSV
    record with quoted newlines) is held past :data:`MAX_ROW_BYTES` (UTF-8): the line where a
    row crosses it is skipped, with the rest of the row, and :class:`RowTooLarge` raised in its
    place (a CSV row ends where the csv module would end it: :func:`csv_state_after`).

    Read rows through :meth:`records`, which counts each row's bytes afresh. A file that
    breaks off (a truncated or corrupt gzip stream) ends the read with one
    :class:`InputError` naming the file and the last line read whole, instead of an
    EOFError or zlib traceback."""

    def __init__(self, f: io.TextIOBase, path: str | Path):
        self.f, self.path, self.n = f, path, 0
        self.row_bytes = self.lines = 0
        self.quoted = False

    def __iter__(self) -> BoundedLines:
        return self

    def __next__(self) -> str:
        try:
            line = self.f.readline(MAX_ROW_BYTES + 1 - self.row_bytes)
            if not line:
                raise StopIteration
            self.n += 1
            self.lines += 1
            self.row_bytes += _utf8_bytes(line)
            if self.row_bytes > MAX_ROW_BYTES:
                self._skip_rest(line)
                raise RowTooLarge(TOO_LARGE)
        except (EOFError, OSError, zlib.error) as exc:
            raise InputError(f"{self.path}: the file breaks off after line {self.n} ({exc}); "
                             "it is truncated or corrupt: fetch it again") from None
        return line

    def _skip_rest(self, line: str) -> None:
        """Read past the row's end, a chunk at a time: a CSV row's where the csv module
        would end it (:func:`csv_state_after`; a row that went on past its first line is in
        a quoted field), any other row's at its line end."""
        state = (QUOTED if self.lines > 1 else START) if self.quoted else None
        while line:
            if state is not None:
                state = csv_state_after(line, state, strict=False)
            if state is None and line.endswith(("\n", "\r")):
                return
            line = self.f.readline(1 << 20)

    def records(self, parsed: Iterator[T] | None = None, quoted: bool = False
                ) -> Iterator[T | RowTooLarge]:
        """The rows ``parsed`` makes of these lines (default: the lines themselves), with a
        :class:`RowTooLarge` yielded in place of a row past the limit, so that the caller
        reports it and goes on; ``quoted``: CSV, whose quoted fields may span lines."""
        parsed = self if parsed is None else parsed
        self.quoted = quoted
        while True:
            self.row_bytes = self.lines = 0
            try:
                yield next(parsed)
            except StopIteration:
                return
            except RowTooLarge as exc:
                yield exc


def _utf8_bytes(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))


@contextmanager
def text_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[BoundedLines]:
    """The lines of a text file (gzip or plain) as :class:`BoundedLines`."""
    with open_text(path, encoding) as f:
        yield BoundedLines(f, path)


def allow_long_fields() -> None:
    """Let the csv module read fields longer than its 128 KiB default (long reviews)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def iter_rows(path: str | Path, fmt: TableFormat | None = None, encoding: str = "utf-8",
              required: Iterable[str] = (), hint: str = "") -> Iterator[Row]:
    """The rows of ``path``. CSV and TSV need a header naming ``required`` columns (else an
    :class:`InputError` that ends with ``hint``); blank JSON lines are skipped."""
    fmt = fmt or table_format(path)
    with text_lines(path, encoding) as f:
        if fmt == "jsonl":
            yield from _json_rows(f)
        else:
            yield from _delimited_rows(f, path, fmt, set(required), hint)


def _json_rows(f) -> Iterator[Row]:
    for n, line in enumerate(f.records(), 1):
        if isinstance(line, RowTooLarge):
            yield Row(n, None, TOO_LARGE)
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            yield Row(n, None, f"not valid JSON: {exc}")
            continue
        except RecursionError:  # arrays nested ~1,000 deep overflow the parser's stack
            yield Row(n, None, "not valid JSON: nested too deeply")
            continue
        if isinstance(row, dict):
            yield Row(n, row)
        else:
            yield Row(n, None, "not a JSON object")


def _delimited_rows(f, path, fmt: TableFormat, required: set[str], hint: str) -> Iterator[Row]:
    allow_long_fields()
    tsv = fmt == "tsv"
    # TSV files like GLUE's have bare quotes inside texts: read them without quoting.
    reader = csv.DictReader(f, delimiter="\t" if tsv else ",",
                            quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    try:
        reader.fieldnames  # noqa: B018 - reads the header
    except RowTooLarge:
        raise InputError(f"{path}: the header line is {TOO_LARGE}; is it a {fmt.upper()} "
                         "file?") from None
    if not reader.fieldnames:
        raise InputError(f"{path} is empty: expected a header line and rows")
    missing = required - set(reader.fieldnames)
    if missing:
        # A binary or misnamed file can have a huge first line: show only its start.
        header = [str(name)[:40] for name in reader.fieldnames[:8]]
        more = " ..." if len(reader.fieldnames) > 8 else ""
        raise InputError(f"{path}: column(s) {sorted(missing)} not found; the header has "
                         f"{header}{more}. {hint}".rstrip())
    for n, row in enumerate(f.records(reader, quoted=not tsv), 2):
        if isinstance(row, RowTooLarge):
            yield Row(n, None, TOO_LARGE)
        elif None in row:
            yield Row(n, None, "more fields than the header")
        else:
            yield Row(n, row)
