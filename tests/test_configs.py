"""Every YAML file in configs/ is only serialised arguments: each one must load."""

from pathlib import Path

import pytest
import yaml

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def model_for(path: Path):
    from polarity.data.prepare import PrepareConfig
    from polarity.train.config import TrainConfig

    if path.name.startswith("prepare"):
        return PrepareConfig
    return TrainConfig


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads(path):
    data = yaml.safe_load(path.read_text())
    model_for(path).model_validate(data)


def test_there_are_configs():
    assert CONFIGS
