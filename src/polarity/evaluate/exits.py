"""Choosing early-exit thresholds on validation data (``polarity calibrate`` on a model
trained with ``exit_layers``): a temperature per exit, then the lowest confidence
thresholds that keep the cascade's accuracy within 0.3 points of the full model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from polarity.backends.exit_heads import all_logits
from polarity.backends.exits import choose_thresholds
from polarity.evaluate.calibration import apply_temperature, fit_temperature
from polarity.labels import POSITIVE

TOLERANCE = 0.003


@torch.inference_mode()
def exit_log_odds(folder: Path, card, texts: list[str], batch_size: int = 64
                  ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Raw log-odds of the final head and of each exit, per text (first window)."""
    from polarity.backends.base_models import resolve_base
    from polarity.backends.encoder import load_encoder_model, load_tokenizer
    from polarity.preprocess import apply_all

    model = load_encoder_model(folder, card)
    tokenizer = load_tokenizer(resolve_base(card.base_model, folder))
    texts = apply_all(texts, card.preprocessing)
    final, exits = [], {int(k): [] for k in model.exits}
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                        max_length=card.max_length, return_tensors="pt")
        z, zs = all_logits(model, enc["input_ids"], enc["attention_mask"])
        final.append((idx, (z[:, 1] - z[:, 0]).numpy()))
        for k, v in zs.items():
            exits[k].append((idx, (v[:, 1] - v[:, 0]).numpy()))

    def gather(parts):
        out = np.zeros(len(texts))
        for idx, values in parts:
            out[idx] = values
        return out

    return gather(final), {k: gather(v) for k, v in exits.items()}


def calibrate_exits(final: np.ndarray, exits: dict[int, np.ndarray], final_temperature: float,
                    labels: list[str]) -> dict:
    """Fit the exits' temperatures and thresholds from raw log-odds on validation data;
    returns the card's ``extra["exits"]``."""
    layers = sorted(exits)
    temperatures = [fit_temperature(exits[k], labels) for k in layers]
    y = np.asarray([g == POSITIVE for g in labels])
    thresholds, report = choose_thresholds(
        [apply_temperature(exits[k], t) for k, t in zip(layers, temperatures, strict=True)],
        apply_temperature(final, final_temperature), y, TOLERANCE)
    return {"layers": layers, "temperatures": temperatures, "thresholds": thresholds,
            "tolerance": TOLERANCE, "validation": report}
