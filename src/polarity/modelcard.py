"""The metadata file (``polarity.json``) that makes a saved model folder describe itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from polarity.errors import ModelFolderError, ModelNotFoundError, validation_message
from polarity.folders import write_atomically
from polarity.labels import LABELS
from polarity.preprocess import check_steps
from polarity.registry import BACKENDS, BackendName

CARD_NAME = "polarity.json"
FORMAT_VERSION = 1


class ModelCard(BaseModel):
    """Everything needed to load and trust a saved model, kept beside its weights."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    """Version of this metadata layout."""
    name: str = "polarity-model"
    """Human-readable model name, shown by the service's health endpoint."""
    version: str = "0.0.0"
    """Version of this trained model."""
    backend: BackendName = "encoder"
    """Which backend loads the folder (:data:`polarity.registry.BACKENDS`): ``encoder``,
    ``onnx``, ``causal_lm``, ``lexicon`` or ``cascade``."""
    base_model: str = ""
    """The frozen base the adapter sits on: a folder path (relative to this folder or
    absolute), ``package:<distribution>`` for weights shipped in a Python package, or a hub id."""
    labels: list[str] = Field(default_factory=lambda: list(LABELS))
    """Label names by output index: exactly NEGATIVE, POSITIVE (every backend's two outputs
    are in this order)."""
    max_length: int = Field(128, gt=0)
    """Tokens per window: the encoder tiers read a longer text in overlapping windows of this
    many tokens (the causal LM tier reads at most this many)."""
    preprocessing: list[str] = Field(default_factory=list)
    """Text normalisation steps applied before tokenising, in training and inference alike
    (:mod:`polarity.preprocess`); empty for models made before the steps existed."""
    temperature: float = Field(1.0, gt=0, allow_inf_nan=False)
    """Calibration temperature: logits are divided by it before the softmax (0 or less would
    make every answer certain or invert it)."""
    pooling: str = "mean"
    """How token states become one vector (encoder backend)."""
    lora: dict[str, Any] = Field(default_factory=dict)
    """The LoRA settings the adapter was trained with."""
    training: dict[str, Any] = Field(default_factory=dict)
    """How the model was made: command, config, data files and their row counts."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Measured results, for example validation and SST-2 dev accuracy."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """The backend's own settings: its typed section (:mod:`polarity.registry`), checked
    when the card is read; :attr:`section` gives them typed."""

    @field_validator("labels")
    @classmethod
    def _two_labels(cls, labels: list[str]) -> list[str]:
        if labels != list(LABELS):
            raise ValueError(f"must be {list(LABELS)} (two labels, by output index); "
                             f"got {labels}")
        return labels

    @field_validator("preprocessing")
    @classmethod
    def _known_steps(cls, steps: list[str]) -> list[str]:
        return check_steps(steps)

    @model_validator(mode="after")
    def _section_fits_the_backend(self):
        BACKENDS[self.backend].section.model_validate(self.extra)
        if self.preprocessing and self.backend in ("causal_lm", "cascade"):
            raise ValueError(f"preprocessing is not applied by the {self.backend} backend "
                             "(its tokenizer reads emoji); leave it empty")
        return self

    @property
    def section(self):
        """``extra`` as the backend's typed section, defaults filled in."""
        return BACKENDS[self.backend].section.model_validate(self.extra)

    @property
    def drift_reference(self) -> dict | None:
        """Answers on validation data (``polarity calibrate``), for drift monitoring."""
        return (self.metrics.get("calibration") or {}).get("reference")

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CARD_NAME
        # The card is the last file a save writes, so a folder with a readable card is
        # complete, and a kill mid-write keeps the old card whole.
        write_atomically(path, json.dumps(self.model_dump(), indent=2, sort_keys=False) + "\n")
        return path


def read_card(folder: str | Path) -> ModelCard:
    """Read ``polarity.json`` from a model folder, with a clear error when it is missing."""
    path = Path(folder) / CARD_NAME
    if not path.is_file():
        raise ModelNotFoundError(
            f"{folder} is not a polarity model folder: {CARD_NAME} is missing "
            "(train one with `polarity train` or use --model default)"
        )
    try:
        return ModelCard.model_validate_json(path.read_text())
    except ValueError as exc:
        raise ModelFolderError(f"{path} is not valid model metadata: "
                               f"{validation_message(exc)}") from exc


def check_folder(folder: str | Path, card: ModelCard) -> None:
    """Refuse a folder that lacks a file its card names (an adapter, the head, a graph), in
    one line, before any weights load: a model without its adapter would load and answer,
    wrongly."""
    missing = [name for name in card.section.files(card) if not (Path(folder) / name).is_file()]
    if missing:
        raise ModelFolderError(f"{folder} is incomplete: {', '.join(missing)} "
                               f"{'is' if len(missing) == 1 else 'are'} missing, which its "
                               f"{CARD_NAME} ({card.backend}) needs; copy the whole model "
                               "folder again")
