"""Rows of a CSV, TSV or JSON-lines file, the one reader behind `polarity prepare`'s file
sources, `polarity evaluate`'s test files and training's prepared splits (`polarity batch`
plans shards with its own streaming parser, batch/shards.py, because it must also find each
row's byte offset).

Each row comes with its line number and either a mapping or the reason it is unusable, so every
caller can report bad rows the same way instead of dropping them."""

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
from typing import Literal, NamedTuple

from polarity.errors import InputError

TableFormat = Literal["csv", "tsv", "jsonl"]


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


@contextmanager
def text_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[Iterator[str]]:
    """The lines of a text file (gzip or plain); a file that breaks off (a truncated or
    corrupt gzip stream) ends the read with one :class:`InputError` naming the file and the
    last line read whole, instead of an EOFError or zlib traceback."""
    with open_text(path, encoding) as f:
        def lines() -> Iterator[str]:
            n = 0
            try:
                for n, line in enumerate(f, 1):  # noqa: B007 - n is reported below
                    yield line
            except (EOFError, OSError, zlib.error) as exc:
                raise InputError(f"{path}: the file breaks off after line {n} ({exc}); "
                                 "it is truncated or corrupt: fetch it again") from None

        yield lines()


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
    for n, line in enumerate(f, 1):
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
    if not reader.fieldnames:
        raise InputError(f"{path} is empty: expected a header line and rows")
    missing = required - set(reader.fieldnames)
    if missing:
        # A binary or misnamed file can have a huge first line: show only its start.
        header = [str(name)[:40] for name in reader.fieldnames[:8]]
        more = " ..." if len(reader.fieldnames) > 8 else ""
        raise InputError(f"{path}: column(s) {sorted(missing)} not found; the header has "
                         f"{header}{more}. {hint}".rstrip())
    for n, row in enumerate(reader, 2):
        if None in row:
            yield Row(n, None, "more fields than the header")
        else:
            yield Row(n, row)
