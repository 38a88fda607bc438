"""Every YAML file in configs/ is only serialised arguments: each one must load."""

from pathlib import Path

import pytest
import yaml

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def model_for(data: dict):
    """The typed arguments a file serialises, told by its keys."""
    from polarity.data.prepare import PrepareConfig
    from polarity.data.subset import SubsetConfig
    from polarity.serve.settings import Settings
    from polarity.train.config import TrainConfig

    if "sources" in data and "output_dir" in data and "train_file" not in data:
        return PrepareConfig.model_validate
    if "service" in data:
        return lambda data: Settings.model_validate(data["service"])
    if "train_rows" in data:
        return SubsetConfig.model_validate
    return TrainConfig.model_validate


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads(path):
    data = yaml.safe_load(path.read_text())
    model_for(data)(data)


def test_there_are_configs():
    assert CONFIGS
