"""``load_classifier``: a model by name or folder, loaded behind the one contract
(:mod:`polarity.contract`).

The CLI, the service and batch jobs use only this module and the contract: prompt text,
tokenisation and label mapping stay behind it.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

from polarity.classifier import Classifier
from polarity.contract import (
    LoadOptions,
    ModelInfo,
    Prediction,
    Predictor,
    check_texts,
    from_positive_probability,
)
from polarity.errors import InputError, ModelNotFoundError
from polarity.modelcard import CARD_NAME, ModelCard, check_folder, read_card
from polarity.registry import BACKENDS, RUNTIMES, RuntimeUnavailable, resolve

__all__ = [
    "Classifier",
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
                    **fields) -> Classifier:
    """Load a model by name (``default``, ``vader``, ``accurate``, ``cascade``, a pulled
    model) or from a saved folder, behind the contract (:class:`polarity.classifier.Classifier`).

    ``options`` (or its fields as keywords: ``device``, ``runtime``, ``dtype``, ``threads``,
    ``max_length``) says how; see :class:`polarity.contract.LoadOptions`.
    """
    options = dataclasses.replace(options or LoadOptions(), **fields)
    if options.runtime not in (None, *RUNTIMES):
        raise ModelNotFoundError(f"runtime {options.runtime!r}; choose one of "
                                 f"{', '.join(RUNTIMES)}")
    target = resolve_model(name_or_path)
    if options.device not in (None, "cpu"):
        _check_device(options.device)
    folder, card = _folder_and_card(target)
    return load_folder(folder, card, options)


def load_folder(folder: Path | None, card: ModelCard, options: LoadOptions) -> Classifier:
    """A folder (None for built-ins) whose card is ``card``, on the runtime ``options`` ask
    for (or the backend's preferred one: :mod:`polarity.registry`)."""
    if options.max_length:
        card = card.model_copy(update={"max_length": options.max_length})
    backend = BACKENDS[card.backend]
    asked = options.runtime if any(r.name == options.runtime for r in backend.runtimes) else None
    candidates = backend.candidates(asked, options.device)
    for i, runtime in enumerate(candidates):
        extra = {"load_stage": load_classifier} if runtime.composite else {}
        try:
            loaded = resolve(runtime.loader)(folder, card, options, **extra)
        except RuntimeUnavailable as exc:
            if asked or i + 1 == len(candidates):
                raise ModelNotFoundError(str(exc)) from None
            continue
        return Classifier(loaded, card.temperature, backend.tier, card)
    raise AssertionError("unreachable: candidates is never empty")


def check_model(name_or_path: str | Path) -> None:
    """Resolve a model and validate its folder and card without loading any weights: what
    a service checks before it starts (a broken folder is one clear error, not a server that
    never becomes ready)."""
    _folder_and_card(resolve_model(name_or_path))


def _folder_and_card(target: Path | str) -> tuple[Path | None, ModelCard]:
    if target == "lexicon":
        return None, ModelCard(name="vader", backend="lexicon", version="3.3.2")
    target = Path(target)
    if not (target / CARD_NAME).is_file() and _is_causal_lm(target):
        from polarity.backends.causal_lm import zero_shot_card

        return (target if target.is_dir() else None), zero_shot_card(str(target))
    card = read_card(target)
    check_folder(target, card)
    return target, card


def kept_model_names() -> list[str]:
    """The models kept in the package and loaded by name (accurate, cascade, minilm-v1)."""
    folder = packaged_models_path()
    return sorted(p.name for p in folder.iterdir() if (p / CARD_NAME).is_file()) \
        if folder.is_dir() else []


def model_choices() -> str:
    """Every name :func:`resolve_model` takes, in words: for errors and ``--model`` help."""
    from polarity.pull import RELEASES

    names = ", ".join(["default", *kept_model_names(), "vader"])
    return (f"{names}, a name from `polarity models pull` ({', '.join(sorted(RELEASES))}), a "
            "folder made by `polarity train`, or a Hugging Face model folder or .gguf file")


def _kept_names() -> str:
    return "".join(f"'{n}', " for n in kept_model_names())


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
