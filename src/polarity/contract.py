"""The contract every model tier implements: :class:`Prediction` (what a text gets),
:class:`ModelInfo` (what a model is), :class:`LoadOptions` (how to load one), the
:class:`Predictor` protocol, and the input checks and the label rule they all share.

Every other module depends on this one and it depends on none of theirs: backends build
on it, and the CLI, the service and batch jobs use only it and ``load_classifier``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from polarity.errors import InputError
from polarity.labels import NEGATIVE, POSITIVE


@dataclass(frozen=True, slots=True)
class Prediction:
    """One text's result. ``label`` is always POSITIVE or NEGATIVE, never neutral."""

    label: str
    """``"POSITIVE"`` or ``"NEGATIVE"``."""
    confidence: float
    """Probability of ``label``: 0.5 to 1."""
    scores: dict[str, float]
    """Probability of each label; the two sum to 1."""
    reasoning: str | None = None
    """A short explanation, only when asked for and the backend supports it."""
    windows: int = 1
    """How many windows of the model's token limit the text was read in (1 unless it is
    longer than one window; see :mod:`polarity.backends.windows`)."""
    exit_layer: int | None = None
    """Debug only: the layer after which an early exit answered (None: the full model).
    Left out of the JSON answers unless debug output is asked for."""
    tier: str | None = None
    """Which tier answered: ``fast`` (the encoder), ``accurate`` (the causal LM),
    ``baseline`` (VADER); in a cascade, the stage whose probability this is."""
    escalation: str | None = None
    """Cascades only: ``not_needed`` (the fast tier was sure), ``escalated`` (the accurate
    tier answered), or why a text that should have gone on did not (``queue_full``,
    ``rate_capped``): its answer is then the fast tier's. None for other models."""

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, debug: bool = False) -> dict:
        """The one JSON shape of a prediction, shared by the HTTP API, the CLI and batch
        outputs' columns: ``predicted_sentiment``, ``confidence``, ``scores``, ``reasoning``,
        ``windows``, ``tier``, ``escalation`` (and with ``debug``, ``exit_layer``)."""
        out = {"predicted_sentiment": self.label, "confidence": self.confidence,
               "scores": dict(self.scores), "reasoning": self.reasoning,
               "windows": self.windows, "tier": self.tier, "escalation": self.escalation}
        if debug:
            out["exit_layer"] = self.exit_layer
        return out


#: The columns of :meth:`Prediction.to_json`, which ``polarity batch`` adds to each row.
PREDICTION_FIELDS = ("predicted_sentiment", "confidence", "scores", "reasoning", "windows",
                     "tier", "escalation")


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is; reported by ``/api/v1/health`` and evaluation reports."""

    name: str
    backend: str
    version: str
    path: str | None = None
    dtype: str = "float32"
    """Precision the model computes in: float32, bfloat16, int8 ..."""
    threads: int | None = None
    """CPU threads the runtime uses (None: not applicable)."""
    reference: dict | None = None
    """Label share and confidence distribution on validation data (from ``polarity
    calibrate``), against which the service measures drift."""
    runtime: str | None = None
    """What computes the answers: onnx, torch, ctranslate2, llama_cpp (the names of
    :data:`polarity.registry.RUNTIMES`), python for VADER, FAST+ACCURATE for a cascade."""


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model; every field None keeps the default."""

    device: str | None = None
    """Torch device: cpu, cuda, cuda:N, mps (default cpu)."""
    runtime: str | None = None
    """``auto`` (the default: each backend's preferred runtime that is installed, see
    :mod:`polarity.registry`) or a runtime by name: ``onnx`` (the encoder on ONNX Runtime,
    static int8, exported on first use and cached), ``torch``; a backend without the named
    runtime uses its own preferred one (a cascade's two stages share the options)."""
    dtype: str | None = None
    """Causal LM tier: float32, bfloat16 or float16 (default: float32 on the CPU, the
    model's own dtype on a GPU)."""
    threads: int | None = None
    """CPU threads for PyTorch or ONNX Runtime (default: theirs)."""
    max_length: int | None = None
    """Tokens per window, overriding the model card's."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **fields) -> LoadOptions:
        """Options from ``POLARITY_RUNTIME``, ``POLARITY_DTYPE`` and
        ``POLARITY_NUM_THREADS``, read at a process's edge (CLI, service settings), with
        explicit non-None ``fields`` taking precedence."""
        threads = environ.get("POLARITY_NUM_THREADS")
        found = {"runtime": environ.get("POLARITY_RUNTIME") or None,
                 "dtype": environ.get("POLARITY_DTYPE") or None,
                 "threads": int(threads) if threads and threads.isdigit() else None}
        return cls(**{**found, **{k: v for k, v in fields.items() if v is not None}})


@dataclass
class Scored:
    """What a backend gives for texts the contract has already checked: per text, the
    log-odds of POSITIVE *before* calibration (the contract divides by the card's
    temperature), and what the answer should say about how it was reached."""

    log_odds: Sequence[float]
    windows: Sequence[int] | None = None
    """Pieces read per text (1 each when None)."""
    exit_layers: Sequence[int | None] | None = None
    tiers: Sequence[str] | None = None
    """Per text, the tier that answered (a cascade); None: the backend's own tier."""
    escalations: Sequence[str | None] | None = None
    calibrated: bool = False
    """True when the log-odds are already calibrated (a cascade: each stage applies its
    own temperature); the contract then leaves them as they are."""


class Backend(Protocol):
    """What a backend implements; :func:`polarity.predictor.load_classifier` wraps it in the
    contract (input checks, temperature, the label rule, building each Prediction)."""

    info: ModelInfo

    def score(self, texts: Sequence[str], batch_size: int) -> Scored:
        """Score already checked texts."""
        ...


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


def label_of(p_positive: float) -> str:
    """The one label rule: POSITIVE from P(POSITIVE) 0.5 up (ties go to POSITIVE)."""
    return POSITIVE if p_positive >= 0.5 else NEGATIVE


def probability(log_odds) -> list[float]:
    """P(POSITIVE) from calibrated log-odds: the sigmoid, stable for large magnitudes and
    exact at +-inf."""
    import numpy as np

    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(log_odds, dtype=np.float64)))).tolist()


def from_positive_probability(p_positive: float, reasoning: str | None = None,
                              windows: int = 1, exit_layer: int | None = None,
                              tier: str | None = None, escalation: str | None = None
                              ) -> Prediction:
    """Build a :class:`Prediction` from P(POSITIVE)."""
    p = min(max(float(p_positive), 0.0), 1.0)
    label = label_of(p)
    scores = {POSITIVE: p, NEGATIVE: 1.0 - p}
    return Prediction(label=label, confidence=scores[label], scores=scores, reasoning=reasoning,
                      windows=windows, exit_layer=exit_layer, tier=tier, escalation=escalation)


# One character worth reading: not whitespace, not a control character (Cc), not an
# invisible format character (Cf: zero-width spaces and joiners, the byte-order mark,
# direction marks). Spelled out, for the Basic Multilingual Plane, because the API schema
# uses the same pattern and regex engines (pydantic's, hypothesis's, a client's) disagree
# on classes such as \S; tests/test_predictor.py checks it against unicodedata.
NOT_BLANK = (r"[^\x00-\x20\x7f-\xa0\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891"
             r"\u08e2\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f"
             r"\u3000\ufeff\ufff9-\ufffb]")
_NOT_BLANK = re.compile(NOT_BLANK)


def is_blank(text: str) -> bool:
    """True when a text holds nothing to read: only whitespace, control characters or
    invisible format characters."""
    return _NOT_BLANK.search(text) is None


def normalize_whitespace(text: str) -> str:
    """The one whitespace rule: leading and trailing whitespace stripped and every run of
    whitespace (spaces, tabs, line breaks, any Unicode space) made one space; every other
    character is left as it is. Tokenizers of causal LMs read a trailing space or a double
    line break as tokens of their own, so without this the same sentence could get a
    different answer from one tier than from another, or from one run to the next."""
    return " ".join(text.split())


def check_texts(texts: Sequence[str] | str, batch_size: int = 1) -> list[str]:
    """Validate predictor input (a non-empty list of non-blank, encodable strings, and a
    positive batch size) and return the texts under the whitespace rule
    (:func:`normalize_whitespace`), which is what every backend scores.

    A single string is accepted as a batch of one.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence):
        raise InputError(f"texts must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise InputError("texts is empty: pass at least one text")
    for i, text in enumerate(texts):
        problem = text_problem(text)
        if problem:
            raise InputError(f"text #{i} {problem}")
    return [normalize_whitespace(text) for text in texts]


def text_problem(text) -> str | None:
    """Why ``text`` cannot be read (None when it can): the one rule for a usable text, which
    the predictors, evaluation files, training rows, ``polarity batch`` and the service share."""
    if not isinstance(text, str):
        return f"is {type(text).__name__}, not a string"
    if is_blank(text):
        return "is empty or only whitespace, control or zero-width characters"
    if not text.isascii():
        # A lone UTF-16 surrogate (half of an emoji cut off by a UTF-16 truncation, or bytes
        # decoded with surrogateescape) cannot be encoded; tokenizers fail on it deep inside.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"is not valid Unicode: a lone surrogate {text[exc.start]!a} at character "
                    f"{exc.start}; send UTF-8 text (a cut-off emoji is a common cause)")
    return None
