"""Input files cut into numbered shards of at most ``shard_rows`` rows, and reading one shard.

Planning streams through each file once and keeps only where every shard starts (a byte
offset for CSV and JSONL, a row offset for Parquet), so a shard can be read by itself, by any
process, in any order: the local engine and every Ray actor read shards the same way, and a
rerun after a crash plans the same shards and skips those already written.

Without a given size, shards are sized to the input (:func:`auto_plan`): at least
``MIN_SHARDS`` of ``MIN_SHARD_ROWS`` to ``MAX_SHARD_ROWS`` rows, so that a killed job of any
size has finished parts to resume from.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from polarity.data.tables import MAX_ROW_BYTES, TOO_LARGE, RowTooLarge, allow_long_fields
from polarity.errors import InputError

#: Shards sized to the input: at least this many (a killed job resumes from finished parts)...
MIN_SHARDS = 8
#: ... of this many rows at least (a part's fixed costs stay small next to its rows) ...
MIN_SHARD_ROWS = 50
#: ... and at most (what a rerun redoes after a kill; the size before shards were sized).
MAX_SHARD_ROWS = 10_000

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
           ".parquet": "parquet"}
#: Arrays and objects inside one another in a JSON line, the line's object counting as one:
#: deeper rows are reported, not parsed (Python's parser overflows its stack at ~1,000
#: levels, and Parquet refuses a schema nested much beyond 50).
MAX_JSON_DEPTH = 32


@dataclass(frozen=True)
class Shard:
    """One slice of one input file."""

    index: int
    path: str
    format: str
    first_row: int
    """Row number (0-based, over all inputs) of the shard's first row."""
    rows: int
    start: int
    """Byte offset (CSV/JSONL) or row offset within the file (Parquet)."""
    end: int
    columns: tuple[str, ...] = ()
    """CSV/TSV header, so that a shard in the middle of a file can be parsed."""

    def to_dict(self) -> dict:
        return asdict(self)


def input_files(path: str | Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FORMATS)
        if not files:
            raise InputError(f"{path} holds no .csv, .tsv, .jsonl or .parquet files")
        return files
    if not path.is_file():
        raise InputError(f"input not found: {path}")
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"{path}: unknown format; use .csv, .tsv, .jsonl or .parquet")
    return [path]


def plan(path: str | Path, shard_rows: int) -> list[Shard]:
    """Shards of ``shard_rows`` rows over every input file, numbered in input order."""
    if shard_rows < 1:
        raise InputError("shard_rows must be at least 1")
    return list(_iter_plan(path, shard_rows))


def _iter_plan(path: str | Path, shard_rows: int) -> Iterator[Shard]:
    index = row = 0
    for file in input_files(path):
        fmt = FORMATS[file.suffix.lower()]
        planner = _plan_parquet if fmt == "parquet" else _plan_text
        file_rows = 0
        for first, rows, start, end, columns in planner(file, fmt, shard_rows):
            yield Shard(index, str(file), fmt, row + first, rows, start, end, columns)
            index += 1
            file_rows += rows
        row += file_rows


def shard_size(rows: int) -> int:
    """Rows per shard for an input of ``rows`` rows: an eighth of it, in whole multiples of
    MIN_SHARD_ROWS, between MIN_SHARD_ROWS and MAX_SHARD_ROWS (2,000 rows: 8 shards of 250)."""
    eighth = math.ceil(rows / MIN_SHARDS / MIN_SHARD_ROWS) * MIN_SHARD_ROWS
    return min(MAX_SHARD_ROWS, max(MIN_SHARD_ROWS, eighth))


def auto_plan(path: str | Path) -> tuple[list[Shard], int]:
    """Shards sized to the input (:func:`shard_size`) in one planning pass, and their size:
    the input is planned in shards of MIN_SHARD_ROWS, which are then joined k at a time
    within each file, exactly the shards ``plan(path, size)`` gives. Only the first
    MIN_SHARDS * MAX_SHARD_ROWS rows' small shards are held: past them the size is the
    largest, and the rest are joined as they come."""
    small = _iter_plan(path, MIN_SHARD_ROWS)
    head: list[Shard] = []
    rows = 0
    for shard in small:
        head.append(shard)
        rows += shard.rows
        if rows >= MIN_SHARDS * MAX_SHARD_ROWS:
            break
    size = shard_size(rows)
    return list(_joined(itertools.chain(head, small), size // MIN_SHARD_ROWS)), size


def _joined(shards: Iterable[Shard], k: int) -> Iterator[Shard]:
    """Runs of ``k`` consecutive shards of one file joined into one, renumbered."""
    run: list[Shard] = []
    index = 0
    for shard in itertools.chain(shards, [None]):
        if run and (shard is None or shard.path != run[0].path or len(run) == k):
            first = run[0]
            yield Shard(index, first.path, first.format, first.first_row,
                        sum(s.rows for s in run), first.start, run[-1].end, first.columns)
            index, run = index + 1, []
        if shard is not None:
            run.append(shard)


def _plan_parquet(file: Path, fmt: str, shard_rows: int):
    import pyarrow.parquet as pq

    total = pq.ParquetFile(file).metadata.num_rows
    for start in range(0, total, shard_rows):
        yield start, min(shard_rows, total - start), start, min(start + shard_rows, total), ()


def _plan_text(file: Path, fmt: str, shard_rows: int):
    with open(file, "rb") as f:
        if f.read(3) != codecs.BOM_UTF8:  # a UTF-8 byte-order mark is not part of row 1
            f.seek(0)
        columns: tuple[str, ...] = ()
        if fmt in ("csv", "tsv"):
            columns = _header(f, file, fmt)
        start, count, first = f.tell(), 0, 0
        for end, _ in _records(f, fmt):
            count += 1
            if count == shard_rows:
                yield first, count, start, end, columns
                first, start, count = first + count, end, 0
        if count:
            yield first, count, start, f.seek(0, io.SEEK_END), columns


def _header(f, file: Path, fmt: str) -> tuple[str, ...]:
    """The CSV/TSV header; two columns of one name are refused (one would be lost)."""
    for _, record in _records(f, fmt):
        if isinstance(record, Unparsable):
            raise InputError(f"{file}: the header row cannot be read: {record.reason}")
        if isinstance(record, list) and record:
            twice = sorted({c for c in record if record.count(c) > 1})
            if twice:
                raise InputError(f"{file}: the header names column(s) {twice} more than "
                                 "once; rename them so that no column is lost")
            return tuple(record)
        break
    raise InputError(f"{file}: empty file or no header row")


@dataclass(frozen=True)
class Unparsable:
    """A record the parser refused, with the text it was read from."""

    reason: str
    raw: str


def _records(f, fmt: str, end: int | None = None
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
    :class:`RowTooLarge` raised; the next record starts after it. A CSV record ends at the
    first line end outside quotes (an even count of ``"`` so far: a quote inside a quoted
    field is doubled), the csv module's own rule for strict, well-formed records."""

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
        """Read past the record's end, a chunk at a time."""
        quotes = sum(c.count('"') for c in self.consumed) + raw.count(b'"') if self.quoted else 0
        while not (raw.endswith(b"\n") and quotes % 2 == 0):
            raw = self.f.readline(1 << 20)
            if not raw:
                return
            self.offset += len(raw)
            quotes += raw.count(b'"') if self.quoted else 0


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def _delimiter(fmt: str) -> str:
    return "\t" if fmt == "tsv" else ","


def read_shard(shard: Shard) -> Iterator[tuple[int, dict | list | str, str | None]]:
    """``(row_number, row, error)`` for each row of the shard. A good row is a dict; a bad
    one comes with its reason and, in place of the row, what was read (the CSV fields or the
    JSON line), so the error report shows it."""
    if shard.format == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(shard.path)
        groups, offset, group_start = [], 0, None
        for g in range(parquet.num_row_groups):  # read only the row groups the shard spans
            n = parquet.metadata.row_group(g).num_rows
            if offset + n > shard.start and offset < shard.end:
                groups.append(g)
                group_start = offset if group_start is None else group_start
            offset += n
        table = parquet.read_row_groups(groups).slice(shard.start - (group_start or 0),
                                                      shard.end - shard.start)
        for i, row in enumerate(table.to_pylist()):
            if _text_bytes(row) > MAX_ROW_BYTES:
                yield shard.first_row + i, _preview(row), f"the row is {TOO_LARGE}"
            else:
                yield shard.first_row + i, row, None
        return
    with open(shard.path, "rb") as f:
        f.seek(shard.start)
        for i, (_, record) in enumerate(_records(f, shard.format, shard.end)):
            row, error = _row(record, shard)
            if error is not None:
                row = record.raw if isinstance(record, Unparsable) else record
            yield shard.first_row + i, row, error


def _text_bytes(row: dict) -> int:
    """The UTF-8 bytes of a Parquet row's text and binary values."""
    return sum(len(v.encode("utf-8", "surrogatepass")) if isinstance(v, str) else len(v)
               for v in row.values() if isinstance(v, str | bytes))


def _preview(row: dict, limit: int = _Lines.HEAD) -> dict:
    """A too-large row as the error report shows it: long values cut to their start."""
    def cut(value):
        if isinstance(value, str | bytes) and len(value) > limit:
            return value[:limit] + ("..." if isinstance(value, str) else b"...")
        return value

    return {key: cut(value) for key, value in row.items()}


def _row(record: list | str | Unparsable, shard: Shard) -> tuple[dict | None, str | None]:
    """One parsed record as a row, or the reason it is not one."""
    if isinstance(record, Unparsable):
        return None, record.reason
    if shard.format == "jsonl":
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
    elif len(record) != len(shard.columns):
        return None, f"{len(record)} fields where the header has {len(shard.columns)}"
    else:
        row = dict(zip(shard.columns, record, strict=True))
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
