"""``load_classifier``: a model by name or folder, loaded behind the one contract
(:mod:`polarity.contract`).

The CLI, the service and batch jobs use only this module and the contract: prompt text,
tokenisation and label mapping stay behind it.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

from polarity.contract import (
    RUNTIMES,
    LoadOptions,
    ModelInfo,
    Prediction,
    Predictor,
    check_texts,
    from_positive_probability,
)
from polarity.errors import InputError, ModelNotFoundError
from polarity.modelcard import CARD_NAME, read_card

__all__ = [
    "LoadOptions",
    "ModelInfo",
    "Prediction",
    "Predictor",
    "check_texts",
    "default_model_path",
    "packaged_models_path",
    "from_positive_probability",
    "load_classifier",
    "resolve_model",
]


ALIASES = {"vader": "lexicon", "lexicon": "lexicon"}


def default_model_path() -> Path:
    """The shipped default model: an encoder adapter inside the package."""
    return Path(str(resources.files("polarity") / "resources" / "default_model"))


def packaged_models_path() -> Path:
    """Earlier defaults, kept in the package and loadable by name."""
    return Path(str(resources.files("polarity") / "resources" / "models"))


def resolve_model(name_or_path: str | Path) -> Path | str:
    """Turn a model name into a folder (or a built-in backend name)."""
    name = str(name_or_path)
    if name == "default":
        path = default_model_path()
        if not (path / CARD_NAME).is_file():
            raise ModelNotFoundError(
                f"the default model is missing from the installed package ({path}); "
                "reinstall polarity"
            )
        return path
    if name in ALIASES:
        return ALIASES[name]
    kept = packaged_models_path() / name
    if name and "/" not in name and (kept / CARD_NAME).is_file():
        return kept
    path = Path(name).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix == ".gguf"):
        return path
    from polarity.pull import RELEASES, pulled_folder

    if name in RELEASES:
        return pulled_folder(name)
    raise ModelNotFoundError(
        f"model {name!r} not found: pass 'default', 'vader', {_kept_names()}a folder made by "
        "`polarity train`, a Hugging Face model folder or .gguf file, or a name from "
        f"`polarity models pull` ({', '.join(sorted(RELEASES))})"
    )


def load_classifier(name_or_path: str | Path = "default", options: LoadOptions | None = None,
                    **fields) -> Predictor:
    """Load a model by name (``default``, ``vader``, a pulled model) or from a saved folder.

    ``options`` (or its fields as keywords: ``device``, ``runtime``, ``dtype``, ``threads``,
    ``max_length``) says how; see :class:`polarity.contract.LoadOptions`.
    """
    options = dataclasses.replace(options or LoadOptions(), **fields)
    target = resolve_model(name_or_path)
    if target == "lexicon":
        from polarity.backends.lexicon import LexiconPredictor

        return LexiconPredictor()
    if options.device not in (None, "cpu"):
        _check_device(options.device)
    target = Path(target)
    if not (target / CARD_NAME).is_file() and _is_causal_lm(target):
        from polarity.backends.causal_lm import load_causal_lm_predictor, zero_shot_card

        card = zero_shot_card(str(target))
        return load_causal_lm_predictor(target if target.is_dir() else None, card, options)
    card = read_card(target)
    if card.backend == "causal_lm":
        from polarity.backends.causal_lm import load_causal_lm_predictor

        return load_causal_lm_predictor(target, card, options)
    if card.backend == "encoder" and _use_onnx(options):
        from polarity.backends.onnx import load_onnx_predictor
        from polarity.export import cached_onnx

        folder = cached_onnx(target)
        return load_onnx_predictor(folder, read_card(folder), options)
    if card.backend == "encoder":
        from polarity.backends.encoder import load_encoder_predictor

        return load_encoder_predictor(Path(target), card, options)
    if card.backend == "onnx":
        from polarity.backends.onnx import load_onnx_predictor

        return load_onnx_predictor(target, card, options)
    raise ModelNotFoundError(
        f"{target}: backend {card.backend!r} is not available in this installation"
    )


def _kept_names() -> str:
    folder = packaged_models_path()
    names = sorted(p.name for p in folder.iterdir() if (p / CARD_NAME).is_file()) \
        if folder.is_dir() else []
    return "".join(f"'{n}', " for n in names)


def _check_device(device: str) -> None:
    """Refuse a device this machine lacks before any weights load (torch would fail later,
    deep inside, with an AssertionError)."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"device {device!r} is not a device name: use cpu, cuda, cuda:N "
                         "or mps") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index or 0) >= count:
            raise InputError(f"device {device!r} is not available here ({count} CUDA GPU(s) "
                             "visible to PyTorch); use --device cpu")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r} is not available here; use --device cpu")


def _use_onnx(options: LoadOptions) -> bool:
    import importlib.util

    runtime, device = options.runtime or "auto", options.device
    if runtime not in RUNTIMES:
        raise ModelNotFoundError(f"runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    available = importlib.util.find_spec("onnxruntime") is not None
    if runtime == "onnx" and not available:
        raise ModelNotFoundError("runtime onnx needs onnxruntime: pip install 'polarity[onnx]'")
    return runtime == "onnx" or (runtime == "auto" and available and (device or "cpu") == "cpu")


def _is_causal_lm(path: Path) -> bool:
    """A GGUF file, or a Hugging Face folder whose architecture ends in ForCausalLM."""
    if path.suffix == ".gguf":
        return True
    config = path / "config.json"
    if not config.is_file():
        return False
    import json

    architectures = json.loads(config.read_text()).get("architectures") or []
    return any(a.endswith("ForCausalLM") for a in architectures)
