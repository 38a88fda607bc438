"""``polarity train``: the configured tier's task, run by the recipe that owns the run."""

from __future__ import annotations

from pathlib import Path

from polarity.train.config import TrainConfig
from polarity.train.recipe import Recipe


def train(config: TrainConfig, resume: Path | str | None = None, command: str | None = None
          ) -> dict:
    """Train and save a model folder into ``config.output_dir``; returns validation metrics."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    return Recipe.for_config(config, command).run(resume)
