"""Every YAML file in configs/ is only serialised arguments: each one must load."""

from pathlib import Path

import pytest
import yaml

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def model_for(path: Path):
    from polarity.data.prepare import PrepareConfig
    from polarity.serve.settings import Settings
    from polarity.train.config import TrainConfig

    if path.name.startswith("prepare"):
        return PrepareConfig.model_validate
    if path.name.startswith("deployment"):
        return lambda data: Settings.model_validate(data["service"])
    return TrainConfig.model_validate


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads(path):
    data = yaml.safe_load(path.read_text())
    model_for(path)(data)


def test_there_are_configs():
    assert CONFIGS
