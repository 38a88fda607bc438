"""Row writers and readers for prepared splits: JSON lines or Parquet, both streaming."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

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


def read_rows(path: str | Path) -> Iterator[dict]:
    """Read a prepared split (``.jsonl`` or ``.parquet``) as dicts."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file not found: {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
        return
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise InputError(f"{path}:{n} is not valid JSON: {exc}") from exc
