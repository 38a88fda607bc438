"""What a measurement ran on: the model's runtime, precision, batch size and threads, a
checksum of its files and the CPU, recorded beside every figure so that it can be
reproduced (an int8 answer differs from an fp32 one, and int8 speed from CPU to CPU)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from polarity.cpu import cpu  # noqa: F401 (recorded with every figure)

#: Files that define a model; logs, checkpoints and reports do not.
MODEL_SUFFIXES = {".json", ".safetensors", ".onnx", ".bin", ".model", ".txt", ".gguf"}
SKIPPED_PARTS = {"checkpoints", "reports"}


def model_checksum(path: str | Path | None) -> str | None:
    """sha256 over the relative names and bytes of a model folder's (or file's) model files;
    None for a built-in model without files (VADER)."""
    if not path:
        return None
    path = Path(path)
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix in MODEL_SUFFIXES
        and not SKIPPED_PARTS & set(p.relative_to(path).parts)
        and not p.name.startswith("."))
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def describe(predictor, batch_size: int) -> dict:
    """The setup of one evaluated model."""
    info = predictor.info
    return {"backend": info.backend, "runtime": info.runtime, "dtype": info.dtype,
            "threads": info.threads,
            "batch_size": batch_size, "model_sha256": model_checksum(info.path),
            "cpu": cpu()}
