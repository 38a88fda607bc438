"""``polarity train``: the task the registry names for the configured tier, run by the recipe."""

from __future__ import annotations

from pathlib import Path

from polarity.registry import BACKENDS, resolve
from polarity.train.config import TrainConfig
from polarity.train.distributed import finish
from polarity.train.recipe import fit


def train(config: TrainConfig, resume: Path | str | None = None, command: str | None = None
          ) -> dict:
    """Train and save a model folder into ``config.output_dir``; returns validation metrics."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    task = resolve(BACKENDS[config.backend].task)(config)
    task.command = command
    try:
        return fit(task, config, resume=resume)
    finally:
        finish(task.world)
