"""Where a model's training data came from, for its model card: the files, the counts that
``polarity prepare`` recorded, the model that scored a ``polarity batch`` output used as a
training file, and the teacher file's own provenance."""

from __future__ import annotations

import json
from pathlib import Path

from polarity.data.teacher import teacher_provenance
from polarity.train.config import TrainConfig


def describe_data(config: TrainConfig) -> dict:
    """Which files trained the model, with prepare's source counts when they are known and,
    for a ``polarity batch`` output, the model that scored it (the teacher)."""
    info: dict = {"train_file": str(config.train_file), "val_file": str(config.val_file)}
    if config.teacher_file:
        info["teacher"] = {"file": str(config.teacher_file),
                           **teacher_provenance(config.teacher_file)}
    manifest = Path(config.train_file) / "_batch.json"
    if manifest.is_file():
        batch = json.loads(manifest.read_text())
        info["scored_by"] = {"model": batch.get("model"), "input": batch.get("input")}
        stats = Path(batch.get("input", "")).parent / "stats.json"
    else:
        stats = Path(config.train_file).parent / "stats.json"
    if stats.is_file():
        recorded = json.loads(stats.read_text())
        info["prepare"] = {"sources": recorded.get("config", {}).get("sources"),
                           "rows": recorded.get("sources"), "splits": recorded.get("splits")}
    return info
