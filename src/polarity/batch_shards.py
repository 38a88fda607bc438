"""Input files cut into numbered shards of at most ``shard_rows`` rows, and reading one shard.

Planning streams through each file once and keeps only where every shard starts (a byte
offset for CSV and JSONL, a row offset for Parquet), so a shard can be read by itself, by any
process, in any order: the local engine and every Ray actor read shards the same way, and a
rerun after a crash plans the same shards and skips those already written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from polarity.errors import InputError

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
    """Shards over every input file, numbered in input order."""
    if shard_rows < 1:
        raise InputError("shard_rows must be at least 1")
    shards: list[Shard] = []
    row = 0
    for file in input_files(path):
        fmt = FORMATS[file.suffix.lower()]
        planner = _plan_parquet if fmt == "parquet" else _plan_text
        file_rows = 0
        for first, rows, start, end, columns in planner(file, fmt, shard_rows):
            shards.append(Shard(len(shards), str(file), fmt, row + first, rows, start, end,
                                columns))
            file_rows += rows
        row += file_rows
    return shards


def _plan_parquet(file: Path, fmt: str, shard_rows: int):
    import pyarrow.parquet as pq

    total = pq.ParquetFile(file).metadata.num_rows
    for start in range(0, total, shard_rows):
        yield start, min(shard_rows, total - start), start, min(start + shard_rows, total), ()


def _plan_text(file: Path, fmt: str, shard_rows: int):
    with open(file, "rb") as f:
        columns: tuple[str, ...] = ()
        if fmt in ("csv", "tsv"):
            header = f.readline()
            columns = tuple(next(csv.reader([header.decode("utf-8", "replace")],
                                            delimiter=_delimiter(fmt)), []))
            if not columns:
                raise InputError(f"{file}: empty file or no header row")
        start, count, first = f.tell(), 0, 0
        for end in _record_ends(f, fmt):
            count += 1
            if count == shard_rows:
                yield first, count, start, end, columns
                first, start, count = first + count, end, 0
        if count:
            yield first, count, start, f.seek(0, io.SEEK_END), columns


def _record_ends(f, fmt: str) -> Iterator[int]:
    """Byte offset after each record. CSV records may span lines (quoted newlines)."""
    if fmt == "jsonl":
        offset = f.tell()
        for line in f:
            offset += len(line)
            if line.strip():
                yield offset
        return
    offset = f.tell()
    pending = False
    for line in f:
        offset += len(line)
        # An odd number of quotes leaves a quoted field open: the record goes on.
        if line.count(b'"') % 2:
            pending = not pending
        if not pending and line.strip():
            yield offset


def _delimiter(fmt: str) -> str:
    return "\t" if fmt == "tsv" else ","


def read_shard(shard: Shard) -> Iterator[tuple[int, dict | None, str | None]]:
    """``(row_number, row, error)`` for each row of the shard; a bad row has row None."""
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
            yield shard.first_row + i, row, None
        return
    with open(shard.path, "rb") as f:
        f.seek(shard.start)
        data = f.read(shard.end - shard.start).decode("utf-8", errors="replace")
    if shard.format == "jsonl":
        lines = (line for line in data.splitlines() if line.strip())
        for i, line in enumerate(lines):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield shard.first_row + i, None, f"invalid JSON: {exc.msg}"
                continue
            if not isinstance(row, dict):
                yield shard.first_row + i, None, "a JSON line must be an object"
                continue
            yield shard.first_row + i, row, None
        return
    reader = csv.reader(io.StringIO(data, newline=""), delimiter=_delimiter(shard.format))
    i = 0
    for values in reader:
        if not values or not any(v.strip() for v in values):
            continue
        if len(values) != len(shard.columns):
            yield (shard.first_row + i, None,
                   f"{len(values)} fields where the header has {len(shard.columns)}")
        else:
            yield shard.first_row + i, dict(zip(shard.columns, values, strict=True)), None
        i += 1
