"""Writing a file or a whole folder so that readers find the old one or the complete new one,
never a half-written one (a run killed midway leaves only a temporary name behind)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from polarity.errors import InputError


@contextmanager
def replacing_folder(target: Path, marker: str = "polarity.json") -> Iterator[Path]:
    """Yield an empty ``TARGET.partial`` folder to write into; when the block succeeds it
    replaces ``target``; when it fails ``target`` is left as it was.

    Only an empty folder or an earlier output (one holding ``marker``) is replaced: any other
    existing folder is refused before anything is written, so a mistyped output path never
    deletes the user's files.
    """
    target = Path(target)
    if target.exists():
        if not target.is_dir():
            raise InputError(f"{target} exists and is not a folder; choose another output path")
        if any(target.iterdir()) and not (target / marker).is_file():
            raise InputError(f"{target} already holds files that are not an earlier output "
                             f"(no {marker}); choose a new or empty folder")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    yield partial
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)


def write_atomically(path: Path, data: bytes | str) -> None:
    """Write ``path`` (creating its folder) under a temporary name and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def slug(name: str) -> str:
    """A name made safe as one path component: letters, digits and ``_.-``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "model"
