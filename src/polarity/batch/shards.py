"""Input files cut into numbered shards of at most ``shard_rows`` rows, and reading one shard.

Planning streams through each file once and keeps only where every shard starts (a byte
offset for CSV and JSONL, a row offset for Parquet), so a shard can be read by itself, by any
process, in any order: the local engine and every Ray actor read shards the same way, and a
rerun after a crash plans the same shards and skips those already written.

Without a given size, shards are sized to the input (:func:`auto_plan`): ``MIN_SHARDS`` of
them, each ``MIN_SHARD_ROWS`` to ``MAX_SHARD_ROWS`` rows (so fewer for a tiny input, more for
a large one), so that a killed job of any size has finished parts to resume from.
"""

from __future__ import annotations

import codecs
import io
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from polarity.batch.records import Unparsable, preview, records, row_of, text_bytes
from polarity.data.tables import MAX_ROW_BYTES, TOO_LARGE
from polarity.errors import InputError

#: Shards sized to the input: at least this many (a killed job resumes from finished parts)...
MIN_SHARDS = 8
#: ... of this many rows at least (a part's fixed costs stay small next to its rows) ...
MIN_SHARD_ROWS = 50
#: ... and at most (what a rerun redoes after a kill; the size before shards were sized).
MAX_SHARD_ROWS = 10_000

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
           ".parquet": "parquet"}


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
        for end, _ in records(f, fmt):
            count += 1
            if count == shard_rows:
                yield first, count, start, end, columns
                first, start, count = first + count, end, 0
        if count:
            yield first, count, start, f.seek(0, io.SEEK_END), columns


def _header(f, file: Path, fmt: str) -> tuple[str, ...]:
    """The CSV/TSV header; two columns of one name are refused (one would be lost)."""
    for _, record in records(f, fmt):
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
            if text_bytes(row) > MAX_ROW_BYTES:
                yield shard.first_row + i, preview(row), f"the row is {TOO_LARGE}"
            else:
                yield shard.first_row + i, row, None
        return
    with open(shard.path, "rb") as f:
        f.seek(shard.start)
        for i, (_, record) in enumerate(records(f, shard.format, shard.end)):
            row, error = row_of(record, shard.format, shard.columns)
            if error is not None:
                row = record.raw if isinstance(record, Unparsable) else record
            yield shard.first_row + i, row, error
