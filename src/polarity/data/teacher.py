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

from polarity.contract import normalize_whitespace
from polarity.errors import InputError

METADATA_KEY = b"polarity.teacher"


def text_key(text: str) -> int:
    """A text's 64-bit key: texts equal under the whitespace rule get the same key, as they
    get the same answer."""
    text = normalize_whitespace(text)
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def write_teacher_file(texts: list[str], p_positive: list[float], path: Path,
                       provenance: dict) -> dict:
    """Write the keyed probabilities (one row per distinct text) and ``provenance`` (model,
    data, command, date ...) as file metadata; returns a summary."""
    import numpy as np

    keys = np.fromiter((text_key(t) for t in texts), dtype=np.int64, count=len(texts))
    probs = np.asarray(p_positive, dtype=np.float32)
    keys, first = np.unique(keys, return_index=True)  # sorted; a repeated text keeps one row
    return {"texts": len(texts), **_write_keyed(keys, probs[first], path, provenance)}


def average_teacher_files(paths: list[Path], weights: list[float], output: Path) -> dict:
    """A teacher that is the weighted mean of others' P(POSITIVE), over the texts they all
    scored; each parent's provenance and weight go into the new file's metadata."""
    import numpy as np

    if len(paths) != len(weights) or len(paths) < 2 or min(weights) < 0 or sum(weights) <= 0:
        raise InputError("average needs two or more teacher files and one non-negative weight "
                         "each (not all zero)")
    tables = [read_teacher_file(p) for p in paths]
    keys = np.asarray(sorted(set.intersection(*(set(t) for t in tables))), dtype=np.int64)
    if not len(keys):
        raise InputError(f"{[str(p) for p in paths]} share no texts")
    total = sum(weights)
    probs = sum(w / total * np.asarray([t[int(k)] for k in keys], dtype=np.float64)
                for w, t in zip(weights, tables, strict=True))
    provenance = {"average_of": [{"file": str(p), "weight": w, **teacher_provenance(p)}
                                 for p, w in zip(paths, weights, strict=True)]}
    return _write_keyed(keys, np.asarray(probs, dtype=np.float32), output, provenance)


def _write_keyed(keys, probs, path: Path, provenance: dict) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from polarity.folders import write_atomically

    table = pa.table({"key": keys, "p_positive": probs})
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(provenance).encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_atomically(path, sink.getvalue().to_pybytes())
    return {"rows": len(keys), "file": str(path), "bytes": Path(path).stat().st_size}


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
