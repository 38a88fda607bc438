"""Writing a whole folder so that readers find the old one or the complete new one, never a
half-written one (an export or a conversion killed midway leaves only ``NAME.partial``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing_folder(target: Path) -> Iterator[Path]:
    """Yield an empty ``TARGET.partial`` folder to write into; when the block succeeds it
    replaces ``target``; when it fails ``target`` is left as it was."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    yield partial
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
