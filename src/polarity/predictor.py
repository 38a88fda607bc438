"""The one contract every model tier implements, and :func:`load_classifier`.

The CLI, the service and batch jobs use only this module: prompt text, tokenisation
and label mapping stay behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol, runtime_checkable

from polarity.errors import ModelNotFoundError
from polarity.modelcard import CARD_NAME, read_card
from polarity.prediction import Prediction, check_texts, from_positive_probability

__all__ = [
    "ModelInfo",
    "Prediction",
    "Predictor",
    "check_texts",
    "default_model_path",
    "from_positive_probability",
    "load_classifier",
    "resolve_model",
]


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is; reported by ``/api/v1/health``."""

    name: str
    backend: str
    version: str
    path: str | None = None


@runtime_checkable
class Predictor(Protocol):
    """A loaded sentiment model."""

    info: ModelInfo

    def predict(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        include_reasoning: bool = False,
    ) -> list[Prediction]:
        """Classify texts. Raises :class:`polarity.errors.InputError` for empty or
        non-string input. ``reasoning`` stays None unless asked for and supported."""
        ...


ALIASES = {"vader": "lexicon", "lexicon": "lexicon"}


def default_model_path() -> Path:
    """The shipped default model: an encoder adapter inside the package."""
    return Path(str(resources.files("polarity") / "resources" / "default_model"))


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
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    raise ModelNotFoundError(
        f"model {name!r} not found: pass 'default', 'vader', or a folder made by "
        "`polarity train` (it holds polarity.json)"
    )


def load_classifier(name_or_path: str | Path = "default", device: str | None = None) -> Predictor:
    """Load a model by name (``default``, ``vader``) or from a saved folder."""
    target = resolve_model(name_or_path)
    if target == "lexicon":
        from polarity.backends.lexicon import LexiconPredictor

        return LexiconPredictor()
    card = read_card(target)
    if card.backend == "encoder":
        from polarity.backends.encoder import load_encoder_predictor

        return load_encoder_predictor(Path(target), card, device=device)
    raise ModelNotFoundError(
        f"{target}: backend {card.backend!r} is not available in this installation"
    )
