"""One table from a backend's name to everything that depends on it: how a folder of that
backend loads on each runtime, which training task makes it, and the typed section of its
model card. ``load_classifier``, ``polarity train``, the service settings, the CLI choices and
``ModelCard.backend`` all read :data:`BACKENDS`; adding a backend is one module and one entry.

Loaders and tasks are named as ``module:attribute`` and imported only when used, so that this
table sits at the bottom of the house (beside the contract) and imports nothing heavy.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The files a model folder holds, named once here for the backends that write and read them
#: and for :func:`polarity.modelcard.check_folder`, which refuses a folder missing one.
ADAPTER_DIR = "adapter"
ADAPTER_FILES = (f"{ADAPTER_DIR}/adapter_config.json", f"{ADAPTER_DIR}/adapter_model.safetensors")
HEAD_FILE, ENCODER_FILE, EXITS_FILE = "head.safetensors", "encoder.safetensors", \
    "exits.safetensors"
LONG_TEXTS_FILE = "long_texts.safetensors"


class Section(BaseModel):
    """A backend's own settings in ``polarity.json`` (its ``extra``); unknown keys are refused
    so that a setting the backend would ignore is not silently kept."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    def files(self, card) -> list[str]:
        """The files (relative to the folder) that a folder with this card must hold."""
        return []


class EncoderSection(Section):
    exits: dict[str, Any] | None = None
    """Early exits: layers, and after ``polarity calibrate`` thresholds, temperatures, rates."""
    long_texts: dict[str, Any] | None = None
    """The long-text reader (:mod:`polarity.backends.long_texts`): file, bits, coefficients,
    and after ``polarity fit-long`` what it was fitted on and its validation figures."""

    def files(self, card) -> list[str]:
        # LoRA settings on the card mean an adapter; without them, the tuned encoder tensors.
        tuned = list(ADAPTER_FILES) if card.lora else [ENCODER_FILE]
        return [*tuned, HEAD_FILE, *([EXITS_FILE] if self.exits else []), *self._reader()]

    def _reader(self) -> list[str]:
        return [self.long_texts.get("file", LONG_TEXTS_FILE)] if self.long_texts else []


#: How an int8 encoder export runs the FFN down-projections (:mod:`polarity.quantize`).
DownProjections = Literal["float", "rows"]


class OnnxSection(EncoderSection):
    file: str | None = None
    """The graph of a model without exits (``model.onnx`` or ``model.int8.onnx``)."""
    stages: list[str] | None = None
    """One graph per stage of a model with early exits."""
    quantize: str | None = None
    """``int8`` (scales fixed at export, or per token where ``int8_down_projections`` says
    so) or None (float32)."""
    calibration: str | None = None
    """Where the int8 ranges came from."""
    int8_down_projections: DownProjections = "float"
    """How the int8 graph runs the FFN down-projections: float, or int8 with a scale per
    token (:mod:`polarity.quantize`)."""
    exported_from: str | None = None
    """The encoder folder this was exported from."""
    opset: int = 17
    """ONNX opset of the graphs."""

    def files(self, card) -> list[str]:
        return [*([self.file] if self.file else self.stages or []), *self._reader()]


class CausalLMSection(Section):
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    """Precision the adapter was trained with (and the model's dtype on a GPU)."""
    prompt_version: int = 1
    """Version of :mod:`polarity.prompt` the model was trained with."""
    label_token_ids: list[int] | None = None
    """First token of `` NEGATIVE`` and `` POSITIVE``, as found at training time."""
    max_new_tokens: int = Field(64, ge=1)
    """Longest generated reason."""
    prefix_cache: bool = True
    """Compute the prompt head's KV cache once at load and reuse it for every text."""
    merged_from: str | None = None
    """The adapter folder that ``polarity export --merge`` folded in."""

    def files(self, card) -> list[str]:
        if self.merged_from:
            return ["config.json"]
        return list(ADAPTER_FILES) if card.lora else []


class CascadeSection(Section):
    stages: list[str] = Field(min_length=2, max_length=2)
    """The fast and the accurate model: names or folders (relative to this folder)."""
    threshold: float = Field(ge=0.5, le=1.0)
    """A text goes on when the first stage's calibrated confidence is below this."""
    curve: list[dict[str, float]] = []
    """Validation: per threshold, the share sent on and the accuracy (``polarity calibrate
    --cascade``)."""
    chosen_for: str | None = None
    """What the threshold was picked for (a target share or accuracy on validation)."""


@dataclass(frozen=True)
class Runtime:
    """One way to run a backend's folders."""

    name: str
    loader: str
    """``module:function(folder, card, options) -> Backend`` (:mod:`polarity.contract`)."""
    needs: str | None = None
    """A module that must be importable (an optional dependency)."""
    cpu_only: bool = False
    extra: str | None = None
    """The pip extra that installs ``needs`` (default: the runtime's name, dashed)."""
    composite: bool = False
    """The loader also takes ``load_stage`` (``load_classifier``), to load the models it is
    made of (a cascade's stages)."""


@dataclass(frozen=True)
class Backend:
    name: str
    tier: str
    """What it is to a user: ``fast``, ``accurate``, ``baseline`` or ``cascade``."""
    runtimes: tuple[Runtime, ...]
    """In order of preference for ``runtime: auto``: the first that is installed (and fits
    the device) is used."""
    section: type[Section] = Section
    task: str | None = None
    """``module:Class`` of the training task (:mod:`polarity.train`), None if not trainable."""
    cost: int = 1
    """Quota units a text of this backend costs in the service, per ``QUOTA_UNIT_TOKENS``
    tokens: its seconds per text over the fast tier's, rounded, measured on the same cores
    in one run (docs/cascade.md, SST-2 dev: the encoder 260.34 texts/s, the causal LM 1.79,
    a cascade sending 15% on, as the shipped one does, 11.50). VADER is cheaper than the
    encoder but a text costs at least one unit."""

    def candidates(self, name: str | None, device: str | None = None) -> list[Runtime]:
        """The runtimes to try, in order: ``name``'s alone, or for ``auto`` (None) every
        installed one that fits the device, preferred first (a loader that cannot run a
        given folder raises :class:`RuntimeUnavailable` and the next one is tried)."""
        from polarity.errors import ModelNotFoundError

        if name not in (None, "auto"):
            for runtime in self.runtimes:
                if runtime.name == name:
                    if runtime.needs and importlib.util.find_spec(runtime.needs) is None:
                        extra = runtime.extra or runtime.name.replace("_", "-")
                        raise ModelNotFoundError(
                            f"runtime {name} needs the {runtime.needs} package: "
                            f"pip install 'polarity[{extra}]'")
                    return [runtime]
            raise ModelNotFoundError(f"the {self.name} backend has no runtime {name!r}; "
                                     f"choose {', '.join(r.name for r in self.runtimes)}")
        on_cpu = (device or "cpu") == "cpu"
        found = [r for r in self.runtimes if (on_cpu or not r.cpu_only) and
                 (r.needs is None or importlib.util.find_spec(r.needs) is not None)]
        return found or [self.runtimes[-1]]


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("encoder", "fast",
            (Runtime("onnx", "polarity.export:load_exported_encoder", "onnxruntime", True),
             Runtime("torch", "polarity.backends.encoder:load_encoder_backend")),
            EncoderSection, "polarity.train.encoder_task:EncoderTask"),
    Backend("onnx", "fast",
            (Runtime("onnx", "polarity.backends.onnx:load_onnx_backend", "onnxruntime"),),
            OnnxSection),
    Backend("causal_lm", "accurate",
            # ONNX Runtime int8 with smoothed products first: closer to float32 than
            # CTranslate2's int8 (2 of SST-2 dev's 872 labels apart against 5) and faster
            # (docs/qwen.md); named apart from the fast tier's `onnx`, so that a run pinned
            # to `onnx` keeps its accurate stage on auto. A GGUF base or another
            # architecture goes on to CTranslate2, llama.cpp, torch.
            (Runtime("onnx_lm", "polarity.backends.onnx_lm:load_onnx_lm_backend",
                     "onnxruntime", True, extra="onnx"),
             Runtime("ctranslate2", "polarity.backends.ct2:load_ctranslate2_backend",
                     "ctranslate2", True),
             Runtime("llama_cpp", "polarity.backends.llama_cpp:load_llama_cpp_backend",
                     "llama_cpp", True),
             Runtime("torch", "polarity.backends.causal_lm:load_causal_lm_backend")),
            CausalLMSection, "polarity.train.causal_lm_task:CausalLMTask", cost=145),
    Backend("lexicon", "baseline",
            (Runtime("python", "polarity.backends.lexicon:load_lexicon_backend"),)),
    Backend("cascade", "cascade",
            (Runtime("stages", "polarity.backends.cascade:load_cascade_backend",
                     composite=True),),
            CascadeSection, cost=23),
)}

BackendName = Literal[tuple(BACKENDS)]  # type: ignore[valid-type]
TrainableBackend = Literal[tuple(n for n, b in BACKENDS.items() if b.task)]  # type: ignore
#: Every runtime name a user may ask for (``auto`` picks per backend).
RUNTIMES = ("auto", *dict.fromkeys(r.name for b in BACKENDS.values() for r in b.runtimes
                                   if r.name not in ("python", "stages")))
RuntimeName = Literal[RUNTIMES]  # type: ignore[valid-type]


class RuntimeUnavailable(Exception):
    """A runtime cannot run this folder (a llama.cpp runtime without a GGUF base): with
    ``runtime: auto`` the next one is tried."""


def resolve(reference: str):
    """The object a ``module:attribute`` reference names."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)
