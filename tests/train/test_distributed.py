"""Two CPU processes under torchrun (gloo) train like one: same loss curve, loadable model."""

import json
import subprocess
import sys

import pytest
import yaml
from helpers import build_tiny_encoder, free_port, synthetic_rows, tiny_train_config

from polarity.predictor import load_classifier


def run(config, nproc: int):
    path = config.output_dir.parent / f"{config.output_dir.name}.yaml"
    path.write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                 "--master_port", str(free_port())] if nproc > 1 else [sys.executable])
    result = subprocess.run([*launcher, "-m", "polarity", "train", "--config", str(path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in (config.output_dir / "train_log.jsonl")
            .read_text().splitlines()]


def test_two_processes_follow_one_process_loss_curve(toy_splits, tmp_path):
    # No dropout anywhere: each rank draws its own dropout masks, which is right for
    # training but would make the two curves differ by noise rather than by a bug.
    tiny_encoder = build_tiny_encoder(tmp_path / "base", dropout=0.0)
    common = dict(max_steps=24, eval_steps=12, head_dropout=0.0, lora={"dropout": 0.0})
    one = run(tiny_train_config(tiny_encoder, toy_splits, tmp_path / "one", **common), 1)
    two = run(tiny_train_config(tiny_encoder, toy_splits, tmp_path / "two", **common), 2)
    loss_one = [r["loss"] for r in one if r["event"] == "train"]
    loss_two = [r["loss"] for r in two if r["event"] == "train"]
    assert len(loss_one) == len(loss_two) > 1
    assert loss_two == pytest.approx(loss_one, rel=2e-3)
    done = [r for r in two if r["event"] == "done"]
    assert len(done) == 1  # only rank 0 logs
    card = json.loads((tmp_path / "two" / "polarity.json").read_text())
    assert card["training"]["processes"] == 2
    # The two-process model loads and is the one-process model, up to summation order.
    texts = [r["text"] for r in synthetic_rows(16, seed=21)]
    a = load_classifier(tmp_path / "one", runtime="torch").positive_probabilities(texts)
    b = load_classifier(tmp_path / "two", runtime="torch").positive_probabilities(texts)
    assert b == pytest.approx(a, abs=1e-2)
