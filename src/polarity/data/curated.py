"""The 100 hand-written cases shipped with the package: the default test file of
``polarity evaluate``, and the texts the accurate tier's int8 graph measures its activations
on (their labels unused there)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def curated_path() -> Path:
    return Path(str(resources.files("polarity") / "resources" / "curated_100.jsonl"))
