"""Row writers and readers for prepared splits: JSON lines or Parquet, both streaming."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from polarity.data.tables import iter_rows
from polarity.errors import InputError


class JsonlWriter:
    def __init__(self, path: Path):
        self._f = open(path, "w", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._f.close()


class ParquetWriter:
    """Buffers rows and writes a row group every ``chunk`` rows."""

    def __init__(self, path: Path, chunk: int = 50_000):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._schema = pa.schema([("text", pa.string()), ("label", pa.string()),
                                  ("source", pa.string())])
        self._writer = pq.ParquetWriter(path, self._schema)
        self._rows: list[dict] = []
        self._chunk = chunk

    def write(self, row: dict) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            table = self._pa.Table.from_pylist(self._rows, schema=self._schema)
            self._writer.write_table(table)
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()


def open_writer(path: Path, fmt: str) -> JsonlWriter | ParquetWriter:
    if fmt == "parquet":
        try:
            return ParquetWriter(path)
        except ImportError as exc:
            raise InputError("Parquet output needs pyarrow: pip install 'polarity[data]'") from exc
    return JsonlWriter(path)


def read_rows(path: str | Path, on_bad: Callable[[int, str], None] | None = None
              ) -> Iterator[dict]:
    """Read a prepared split (``.jsonl`` or ``.parquet``), or a folder of Parquet parts such
    as ``polarity batch`` writes, as dicts.

    A line that is not a JSON object raises :class:`InputError`, or, with ``on_bad``, is
    reported as ``on_bad(line_number, reason)`` and skipped.
    """
    path = Path(path)
    if path.is_dir():
        parts = sorted(p for p in path.glob("*.parquet") if not p.name.startswith(("_", ".")))
        if not parts:
            raise InputError(f"{path} is a folder without Parquet parts; pass a .jsonl or "
                             ".parquet file, or a `polarity batch` output folder")
        for part in parts:
            yield from read_rows(part)
        return
    if not path.is_file():
        raise InputError(f"data file not found: {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
        return
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        raise InputError(f"{path}: training reads JSONL or Parquet with text and label; "
                         f"convert it with `polarity prepare --source {path.suffix[1:].lower()}"
                         f":{path}` (which also cleans and splits it)")
    for row in iter_rows(path, "jsonl"):
        if row.fields is not None:
            yield row.fields
        elif on_bad is None:
            raise InputError(f"{path}:{row.line} is {row.problem}")
        else:
            on_bad(row.line, row.problem)
