"""Two tiers, one answer: the fast tier answers what it is sure of, the accurate tier the rest.

A text goes to the second stage only when the first stage's calibrated confidence (the
probability of its label) is below the card's ``threshold``; its answer is then the second
stage's, and ``tier`` says which stage answered. The decision is per text (a long text's
windows are combined first), from that text's own score, so a text takes the same path and
gets the same answer in any batch, as far as each stage does.

A folder holds only ``polarity.json`` (backend ``cascade``) naming its two stages (model
names such as ``default`` and ``accurate``, or folders relative to it) and the threshold,
which ``polarity calibrate --cascade`` picks on validation data (:mod:`polarity.evaluate.cascade`).
The service and ``polarity batch`` use :meth:`CascadeBackend.needs_second` and the two stages
directly, to run the accurate stage in its own lane (:mod:`polarity.serve.escalation`) or in
its own pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from polarity.contract import LoadOptions, ModelInfo, Scored, probability
from polarity.modelcard import ModelCard

NOT_NEEDED, ESCALATED = "not_needed", "escalated"


class CascadeBackend:
    def __init__(self, first, second, threshold: float, card: ModelCard,
                 path: Path | None = None):
        self.first, self.second, self.threshold = first, second, float(threshold)
        self.info = ModelInfo(card.name, "cascade", card.version, str(path) if path else None,
                              f"{first.info.dtype}+{second.info.dtype}", first.info.threads,
                              card.drift_reference,
                              runtime=f"{first.info.runtime}+{second.info.runtime}")

    def needs_second(self, first_p_positive) -> np.ndarray:
        return needs_second(first_p_positive, self.threshold)

    def work(self, texts: Sequence[str]) -> list[int]:
        return self.first.work(texts)  # the second stage's share has a lane of its own

    def score(self, texts: Sequence[str], batch_size: int = 32) -> Scored:
        first, z = self.first.calibrated(texts, batch_size)
        n = len(texts)
        windows = list(first.windows or [1] * n)
        tiers = [self.first.tier] * n
        escalations = [NOT_NEEDED] * n
        hard = np.flatnonzero(self.needs_second(probability(z))).tolist()
        if hard:
            second, z2 = self.second.calibrated([texts[i] for i in hard], batch_size)
            z = z.copy()
            z[hard] = z2
            for j, i in enumerate(hard):
                windows[i] = (second.windows or [1] * len(hard))[j]
                tiers[i], escalations[i] = self.second.tier, ESCALATED
        return Scored(z.tolist(), windows, None, tiers, escalations, calibrated=True)

    def explain(self, texts: Sequence[str], labels: Sequence[str], batch_size: int,
                scored: Scored) -> list[str | None]:
        """Each text's reason from the stage that answered it."""
        out: list[str | None] = [None] * len(texts)
        for stage, went_on in ((self.first, False), (self.second, True)):
            idx = [i for i, e in enumerate(scored.escalations) if (e == ESCALATED) == went_on]
            if idx:
                preds = stage.predict([texts[i] for i in idx], batch_size,
                                      include_reasoning=True)
                for i, pred in zip(idx, preds, strict=True):
                    out[i] = pred.reasoning
        return out


def needs_second(first_p_positive, threshold: float) -> np.ndarray:
    """Per text, whether the first stage's calibrated confidence (from its P(POSITIVE), as
    its Prediction holds it) is below the threshold: the one routing rule, used here, by the
    service's escalation lane and by ``polarity batch``."""
    p = np.asarray(first_p_positive, dtype=np.float64)
    return np.maximum(p, 1.0 - p) < threshold


def stages_of(folder: Path, card: ModelCard) -> tuple[str, str, float]:
    """The two stages (as ``load_classifier`` takes them) and the threshold, unloaded."""
    section = card.section
    first, second = (stage_reference(s, folder) for s in section.stages)
    return first, second, section.threshold


def stage_reference(name: str, folder: Path | None) -> str:
    """A stage as written in the card: a model name, or a folder relative to the cascade's."""
    if folder is not None and (folder / name).is_dir():
        return str((folder / name).resolve())
    return name


def load_cascade_backend(folder: Path | None, card: ModelCard, options: LoadOptions,
                         load_stage: Callable) -> CascadeBackend:
    *names, threshold = stages_of(folder, card)
    first, second = (load_stage(name, options) for name in names)
    if "cascade" in (first.tier, second.tier):
        from polarity.errors import InputError

        raise InputError(f"{folder}: a cascade's stages must be models, not cascades")
    return CascadeBackend(first, second, threshold, card, folder)
