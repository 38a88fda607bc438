"""Early exits: classifier heads after intermediate layers of the encoder, so that a text the
model is already sure about after two of its six layers does not pay for the other four.

Training (``exit_layers`` in the config) puts a head after each listed layer, on the same
masked-mean pooling as the final head, and teaches it the teacher's probability when there is
one, else the final head's. ``polarity calibrate`` then picks, on validation data, one
confidence threshold per exit, as low as keeps accuracy within 0.3 points of the full model
(``tolerance``), and records thresholds, per-exit temperatures and exit rates in the card.

At inference a batch runs stage by stage: after each exit, the texts whose exit confidence
reaches its threshold leave with that exit's answer and the rest continue, a shrinking batch.
A text's path depends only on its own scores, so the same text leaves at the same exit, with
the same answer, in any batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polarity.registry import EXITS_FILE as EXITS_FILE  # named once, there


@dataclass(frozen=True)
class ExitPlan:
    """Where texts may leave, and when: the card's ``extra["exits"]``."""

    layers: list[int]
    thresholds: list[float] = field(default_factory=list)
    """Confidence (probability of the predicted label, after the exit's temperature) at or
    above which a text leaves; empty until calibrated (then no text leaves early)."""
    temperatures: list[float] = field(default_factory=list)

    @classmethod
    def from_card(cls, card) -> ExitPlan | None:
        spec = card.extra.get("exits")
        if not spec:
            return None
        return cls(list(spec["layers"]), list(spec.get("thresholds", [])),
                   list(spec.get("temperatures", [])))

    @property
    def active(self) -> bool:
        return len(self.thresholds) == len(self.layers) > 0


def stages(plan: ExitPlan, layers: int) -> list[tuple[int, int]]:
    """``(first layer, end layer)`` of each stage: up to each exit, then to the end."""
    bounds = [0, *plan.layers, layers]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


#: ``run_stage(i, x, attention_mask) -> (hidden, logits)``: stage ``i`` of the cascade on
#: its input (token ids for the first, the previous stage's hidden states after), with the
#: logits of exit ``i`` (of the final head for the last stage, whose hidden is unused).
StageRunner = Callable[[int, Any, np.ndarray], tuple[Any, np.ndarray]]


def cascade(input_ids: np.ndarray, attention_mask: np.ndarray, run_stage: StageRunner,
            plan: ExitPlan, final_temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Logits per text, scaled so that dividing by ``final_temperature`` applies the
    answering head's own temperature, and the layer each text left after (0 for those
    that went through every layer)."""
    rows = np.arange(len(input_ids))
    logits = np.zeros((len(input_ids), 2))
    left = np.zeros(len(input_ids), dtype=np.int64)
    x = input_ids
    for i in range(len(plan.layers) + 1):
        hidden, z = run_stage(i, x, attention_mask[rows])
        z = np.asarray(z, dtype=np.float64)
        if i == len(plan.layers):
            logits[rows] = z
            break
        if not plan.active:  # not calibrated yet: every text goes through every stage
            x = hidden
            continue
        z = z / plan.temperatures[i]
        confidence = 1.0 / (1.0 + np.exp(-np.abs(z[:, 1] - z[:, 0])))
        sure = confidence >= plan.thresholds[i]
        logits[rows[sure]] = z[sure] * final_temperature
        left[rows[sure]] = plan.layers[i]
        rows, x = rows[~sure], hidden[~sure]
        if len(rows) == 0:
            break
    return logits, left


def choose_thresholds(exit_probs: list[np.ndarray], final_probs: np.ndarray,
                      labels: np.ndarray, tolerance: float = 0.003) -> tuple[list[float], dict]:
    """One threshold per exit, in order, each the lowest that keeps the accuracy of the
    whole cascade within ``tolerance`` of the full model's on these (validation) texts.

    ``*_probs`` are calibrated P(POSITIVE); ``labels`` 1 for POSITIVE."""
    full = float(((final_probs >= 0.5) == labels).mean())
    answered = np.zeros(len(labels), dtype=bool)
    predicted = (final_probs >= 0.5).copy()
    thresholds, rates = [], []
    for probs in exit_probs:
        confidence = np.maximum(probs, 1 - probs)
        best = 1.01  # above any confidence: nobody leaves here
        for t in np.unique(np.round(confidence, 4))[::-1]:
            leaves = ~answered & (confidence >= t)
            trial = np.where(leaves, probs >= 0.5, predicted)
            if ((trial == labels).mean() >= full - tolerance):
                best = float(t)
            else:
                break
        leaves = ~answered & (confidence >= best)
        predicted = np.where(leaves, probs >= 0.5, predicted)
        answered |= leaves
        thresholds.append(best)
        rates.append(float(leaves.mean()))
    accuracy = float((predicted == labels).mean())
    return thresholds, {"exit_rates": rates, "final_rate": float(1 - answered.mean()),
                        "accuracy": accuracy, "full_accuracy": full, "n": len(labels)}
