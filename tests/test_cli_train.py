"""`polarity train`: every config field is a flag, SIGTERM leaves a resumable run with a
hint, and a missing prepared file names the command that makes it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import tiny_train_config

from polarity.cli import main
from polarity.cli.types import model_flag_values
from polarity.train.config import TrainConfig


def test_every_config_field_is_a_flag_with_its_docstring(capsys):
    from polarity.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--lora.r", "8", "--exit-layers", "2,4",
                              "--metric-for-best", "loss", "--init-from", "none"])
    values = model_flag_values(args, TrainConfig)
    assert values == {"lora": {"r": "8"}, "exit_layers": ["2", "4"], "metric_for_best": "loss",
                      "init_from": None}
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()
    for name in TrainConfig.model_fields:
        assert f"--{name.replace('_', '-')}" in help_text or name == "lora"
    assert "Rank of the low-rank update" in help_text


def test_flags_override_files_field_by_field(tiny_encoder, toy_splits, tmp_path):
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path / "out", max_steps=2)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(json.loads(config.model_dump_json())))
    assert main(["train", "--config", str(cfg), "--lora.r", "4", "--max-steps", "1"]) == 0
    card = json.loads((tmp_path / "out" / "polarity.json").read_text())
    assert card["lora"]["r"] == 4 and card["lora"]["alpha"] == config.lora.alpha
    assert card["training"]["steps"] == 1
    assert main(["train", "--config", str(cfg), "--batch-size", "0", "--output-dir",
                 str(tmp_path / "x")]) == 2  # the model's range check, one line


def test_a_missing_prepared_file_names_the_prepare_command(tmp_path, capsys):
    assert main(["train", "--train-file", str(tmp_path / "nope.jsonl"), "--output-dir",
                 str(tmp_path / "o")]) == 2
    assert "polarity prepare --config configs/prepare_default.yaml" in capsys.readouterr().err


def test_sigterm_leaves_a_resumable_run_and_says_how(tiny_encoder, toy_splits, tmp_path):
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path / "run", eval_steps=2,
                               max_steps=400, num_epochs=50)
    cfg = tmp_path / "c.json"
    cfg.write_text(config.model_dump_json())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.Popen([sys.executable, "-m", "polarity", "train", "--config", str(cfg)],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "run" / "checkpoints").glob("step-*")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert "terminated; continue from the last checkpoint" in err
    assert "--resume" in err
