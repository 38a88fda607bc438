"""Teacher probabilities as data: one Parquet file per teacher, P(POSITIVE) keyed by a hash
of each text, with where the numbers came from in the file's metadata.

Keys instead of texts: the file can live in the repository (a few MB for 200,000 texts)
without copying training data into it, and a training run finds a text's teacher
probability by hashing its own copy of the text. Columns: ``key`` (int64, the first 8 bytes
of BLAKE2b over the UTF-8 text) and ``p_positive`` (float32).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from polarity.errors import InputError

METADATA_KEY = b"polarity.teacher"


def text_key(text: str) -> int:
    """A text's 64-bit key (the same text always gives the same key)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def write_teacher_file(texts: list[str], p_positive: list[float], path: Path,
                       provenance: dict) -> dict:
    """Write the keyed probabilities (one row per distinct text) and ``provenance`` (model,
    data, command, date ...) as file metadata; returns a summary."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from polarity.folders import write_atomically

    keys = np.fromiter((text_key(t) for t in texts), dtype=np.int64, count=len(texts))
    probs = np.asarray(p_positive, dtype=np.float32)
    keys, first = np.unique(keys, return_index=True)  # sorted; a repeated text keeps one row
    table = pa.table({"key": keys, "p_positive": probs[first]})
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(provenance).encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_atomically(path, sink.getvalue().to_pybytes())
    return {"texts": len(texts), "rows": len(keys), "file": str(path),
            "bytes": Path(path).stat().st_size}


def read_teacher_file(path: str | Path, column: str = "p_positive") -> dict[int, float]:
    """``{key: probability}`` from a teacher file."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError(f"teacher file not found: {path} (see docs/training.md, "
                         "distillation)")
    table = pq.read_table(path)
    if "key" not in table.column_names or column not in table.column_names:
        raise InputError(f"{path} is not a teacher file with columns key and {column!r} "
                         f"(it has {table.column_names})")
    return dict(zip(table.column("key").to_pylist(), table.column(column).to_pylist(),
                    strict=True))


def teacher_provenance(path: str | Path) -> dict:
    """The metadata a teacher file was written with."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata.get(METADATA_KEY, b"{}"))
