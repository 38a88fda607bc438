"""scripts/interpolate_models.py: models between two encoder models of one base, whose update
is exactly the weighted sum of the two (WiSE-FT)."""

from pathlib import Path

import numpy as np
import pytest
from helpers import load_script, tiny_train_config

from polarity.predictor import load_classifier

TEXTS = ["the movie was great", "it is awful and boring", "this phone is so happy",
         "really the worst product"]


@pytest.fixture(scope="module")
def second_tiny(tiny_encoder, toy_splits, tmp_path_factory):
    """Another tiny model on the same base: other seed, other steps."""
    from polarity.train.run import train

    out = tmp_path_factory.mktemp("second-tiny")
    train(tiny_train_config(tiny_encoder, toy_splits, out, seed=3, num_epochs=2))
    return out


def log_odds(model_dir: Path) -> np.ndarray:
    model = load_classifier(model_dir, runtime="torch")
    return model.log_odds(TEXTS) / model.temperature


def test_the_ends_are_the_two_models_and_the_middle_is_a_third(trained_tiny, second_tiny,
                                                                tmp_path):
    script = load_script("interpolate_models")
    first, second = log_odds(trained_tiny), log_odds(second_tiny)
    assert np.abs(first - second).max() > 0.1  # two different models
    for w, expected in ((0.0, first), (1.0, second)):
        out = script.between(trained_tiny, second_tiny, w, tmp_path / f"w{w}")
        assert np.allclose(log_odds(out), expected, atol=1e-4)
    middle = script.between(trained_tiny, second_tiny, 0.5, tmp_path / "w0.5")
    assert not np.allclose(log_odds(middle), first, atol=1e-3)
    card = load_classifier(middle, runtime="torch").card
    assert card.lora["r"] == 32 and card.training["between"]["weight"] == 0.5


def test_adapters_of_another_scale_are_refused(trained_tiny, tmp_path):
    import json
    import shutil

    other = tmp_path / "other"
    shutil.copytree(trained_tiny, other)
    config = other / "adapter" / "adapter_config.json"
    config.write_text(json.dumps(dict(json.loads(config.read_text()), lora_alpha=7)))
    with pytest.raises(SystemExit, match="scale"):
        load_script("interpolate_models").between(trained_tiny, other, 0.5, tmp_path / "out")
