"""``polarity train``: pick the task for the configured tier and run the loop."""

from __future__ import annotations

from pathlib import Path

from polarity.train.config import TrainConfig
from polarity.train.distributed import finish
from polarity.train.recipe import fit


def train(config: TrainConfig, resume: Path | str | None = None, command: str | None = None
          ) -> dict:
    """Train and save a model folder into ``config.output_dir``; returns validation metrics."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if config.backend == "encoder":
        from polarity.train.encoder_task import EncoderTask

        task = EncoderTask(config)
    elif config.backend == "causal_lm":
        from polarity.train.causal_lm_task import CausalLMTask

        task = CausalLMTask(config)
    else:  # pragma: no cover - guarded by the config's Literal
        raise ValueError(config.backend)
    task.command = command
    try:
        return fit(task, config, resume=resume)
    finally:
        finish(task.world)
