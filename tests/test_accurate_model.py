"""The shipped accurate tier: a LoRA adapter in the package over the pulled Qwen2.5-Coder-1.5B
base. The base is not pulled in the default test run (the tests' cache is their own), so what
is tested here is the folder itself and the error a user gets before pulling; the real
weights run in tests/backends/test_real_qwen.py (pytest -m real_model)."""

import json

import pytest

from polarity import load_classifier
from polarity.errors import ModelNotFoundError
from polarity.predictor import packaged_models_path, resolve_model

FOLDER = packaged_models_path() / "accurate"
REFERENCE_MODULES = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_accurate_is_a_packaged_adapter_that_describes_itself():
    assert resolve_model("accurate") == FOLDER
    card = json.loads((FOLDER / "polarity.json").read_text())
    assert card["backend"] == "causal_lm" and card["base_model"] == "qwen2.5-coder-1.5b-instruct"
    assert card["lora"]["r"] == 16 and card["lora"]["alpha"] == 32
    assert card["lora"]["dropout"] == 0.05 and set(card["lora"]["target_modules"]) == \
        REFERENCE_MODULES
    assert 0.5 < card["temperature"] < 3 and card["metrics"]["calibration"]["val_rows"] >= 300
    assert card["training"]["train_rows"] >= 4000 and "polarity train" in \
        card["training"]["command"]
    assert card["metrics"]["validation"]["accuracy"] > 0.9
    adapter = FOLDER / "adapter" / "adapter_model.safetensors"
    assert adapter.stat().st_size < 40 * 2**20  # bf16: about 37 MB
    assert not (FOLDER / "checkpoints").exists() and not (FOLDER / "tokenizer.json").exists()


def test_before_the_base_is_pulled_the_error_names_the_pull_command():
    with pytest.raises(ModelNotFoundError,
                       match="polarity models pull qwen2.5-coder-1.5b-instruct"):
        load_classifier("accurate")


def test_the_cli_says_the_same_in_one_line(capsys):
    from polarity.cli import main

    assert main(["analyze", "--model", "accurate", "I love it"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "polarity models pull qwen2.5-coder-1.5b-instruct" in err


def test_the_packaged_cascade_names_its_stages_and_a_chosen_threshold():
    folder = resolve_model("cascade")
    card = json.loads((folder / "polarity.json").read_text())
    assert card["backend"] == "cascade" and card["extra"]["stages"] == ["default", "accurate"]
    threshold = card["extra"]["threshold"]
    assert 0.5 < threshold < 1 and card["extra"]["chosen_for"]
    shares = [point["share_sent"] for point in card["extra"]["curve"]]
    assert shares == sorted(shares) and 0.15 in shares
    with pytest.raises(ModelNotFoundError, match="polarity models pull"):
        load_classifier("cascade")  # its accurate stage needs the pulled base too
