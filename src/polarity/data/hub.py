"""Hugging Face data sets as a source: ``hf:stanfordnlp/sst2?split=train`` (a hub id),
``hf:glue/sst2`` (a data set and its configuration) or ``hf:/path/to/folder`` (a folder
written by ``Dataset.save_to_disk``), read with the ``datasets`` library.

The hub is asked unless the user turns it off: ``polarity --offline`` (or ``HF_HUB_OFFLINE=1``,
the setting the hub libraries read themselves; the CLI sets it once at the process edge).
Where the hub cannot be reached or is off, ``local_copy`` names a file with the same rows to
read instead, so the same config works on a machine with a local copy and on one with the
hub.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from polarity.data.sources import Record, Rejected, SourceSpec, record_from_mapping
from polarity.errors import InputError


def hub_is_off() -> bool:
    """Whether the user turned the hub off (``--offline`` sets ``HF_HUB_OFFLINE=1``)."""
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() not in ("0", "", "false",
                                                                        "no", "off")


class HubUnavailable(InputError):
    """The data set could not be read from the hub (offline, no network, not found)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # e.g. "ConnectionError: the hub is off: ..."


def open_hf(spec: SourceSpec) -> Iterator[Record | Rejected]:
    """The rows of one split of a data set; the data set is opened before this returns, so
    an unreachable hub raises :class:`HubUnavailable` here."""
    try:
        rows = _load(spec)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - network, hub and format errors of every kind
        reason = (f"{type(exc).__name__}: "
                  f"{str(exc).splitlines()[0][:200] if str(exc) else ''}")
        raise HubUnavailable(f"could not read hf:{spec.path} ({reason}); {_next_step()}",
                             reason) from exc
    return (record_from_mapping(row, spec, f"hf:{spec.path}[{spec.split}]:{n}")
            for n, row in enumerate(rows))


def _next_step() -> str:
    off = ("drop --offline and unset HF_HUB_OFFLINE to read it from the hub, "
           if hub_is_off() else "")
    return f"{off}give local_copy (the same rows on disk) for machines without the hub"


def _load(spec: SourceSpec):
    try:
        import datasets
    except ImportError as exc:
        raise InputError("hf: sources need the datasets library: pip install "
                         "'polarity[data]'") from exc
    datasets.disable_progress_bars()
    folder = Path(spec.path).expanduser()
    if folder.is_dir():
        loaded = datasets.load_from_disk(str(folder))
    else:
        if hub_is_off():
            raise ConnectionError("the hub is off: --offline or HF_HUB_OFFLINE=1")
        name, config = spec.path, spec.config
        if config is None and name.startswith("glue/"):
            name, config = "glue", name.removeprefix("glue/")
        loaded = datasets.load_dataset(name, config, split=spec.split)
    if isinstance(loaded, datasets.DatasetDict):
        if spec.split not in loaded:
            raise InputError(f"hf:{spec.path} has no split {spec.split!r}; it has "
                             f"{sorted(loaded)} (choose one with ?split=)")
        loaded = loaded[spec.split]
    missing = {spec.text_column, spec.label_column} - set(loaded.column_names)
    if missing:
        raise InputError(f"hf:{spec.path}: column(s) {sorted(missing)} not found; it has "
                         f"{loaded.column_names}. Map them with ?text_column=...&"
                         "label_column=... (SST-2 on the hub: text_column=sentence)")
    return iter(loaded)
