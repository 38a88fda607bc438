"""A non-finite loss or gradient never reaches the weights: the step is skipped and counted,
too many in a row stop the run, and a model that scores NaN is never saved."""

import json
import math

import pytest
import torch
from helpers import tiny_train_config

from polarity.errors import InputError
from polarity.predictor import load_classifier
from polarity.train.recipe import build_task, fit


def poisoned(task, bad_calls):
    """batch_loss that returns inf times the loss on the given calls: one such step, applied,
    makes every trainable weight NaN (what happened 45 steps into a Qwen2 run on a GPU)."""
    original, calls = task.batch_loss, []

    def batch_loss(rows):
        calls.append(1)
        loss = original(rows)
        return loss * math.inf if len(calls) in bad_calls else loss

    task.batch_loss = batch_loss
    return task


def test_a_non_finite_step_is_skipped_and_recorded(tiny_encoder, toy_splits, tmp_path):
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path, max_steps=48)
    fit(poisoned(build_task(config), {3, 4, 10}), config)
    card = json.loads((tmp_path / "polarity.json").read_text())
    assert card["training"]["skipped_steps"] == 3 and card["training"]["steps"] == 48
    assert card["metrics"]["validation"]["accuracy"] > 0.8  # it still learned
    log = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "skipped"] == [3, 4, 10]
    model = load_classifier(tmp_path, runtime="torch")
    assert all(torch.isfinite(p).all() for p in model.backend.model.parameters())
    assert all(math.isfinite(p) for p in model.positive_probabilities(["great movie", "awful"]))


def test_too_many_bad_steps_in_a_row_stop_the_run(tiny_encoder, toy_splits, tmp_path):
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path, max_steps=24,
                               max_bad_steps=3)
    with pytest.raises(InputError, match="diverged: 3 steps in a row up to step 7"):
        fit(poisoned(build_task(config), {5, 6, 7}), config)
    assert not (tmp_path / "polarity.json").exists()


def test_a_model_that_scores_nan_is_never_saved(tiny_encoder, toy_splits, tmp_path):
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path, max_steps=4, eval_steps=2)
    task = build_task(config)
    original = task.evaluate
    task.evaluate = lambda rows, bs: {**original(rows, bs), "loss": math.nan}
    with pytest.raises(InputError, match="no checkpoint .* has a finite validation loss"):
        fit(task, config)
    assert not (tmp_path / "polarity.json").exists()
