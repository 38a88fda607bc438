"""Early exits: heads after intermediate layers, thresholds chosen on validation, and a
cascade that answers each text the same way in any batch, on PyTorch and ONNX Runtime."""

import json
import random

import numpy as np
import pytest
from helpers import synthetic_rows, tiny_train_config, write_jsonl

from polarity.backends.exits import choose_thresholds
from polarity.predictor import load_classifier

TEXTS = [r["text"] for r in synthetic_rows(80, seed=9)]


@pytest.fixture(scope="module")
def exit_model(tiny_encoder, tmp_path_factory):
    from polarity.evaluate.run import calibrate
    from polarity.train.run import train

    root = tmp_path_factory.mktemp("exits")
    write_jsonl(root / "train.jsonl", synthetic_rows(256, seed=1))
    write_jsonl(root / "val.jsonl", synthetic_rows(200, seed=2))
    train(tiny_train_config(tiny_encoder, root, root / "model", exit_layers=[1]))
    calibrate(str(root / "model"), root / "val.jsonl", progress=False)
    return root / "model"


def test_calibration_records_thresholds_and_exit_rates(exit_model):
    exits = json.loads((exit_model / "polarity.json").read_text())["extra"]["exits"]
    assert exits["layers"] == [1] and len(exits["thresholds"]) == 1
    report = exits["validation"]
    assert report["accuracy"] >= report["full_accuracy"] - 0.003
    assert 0 < report["exit_rates"][0] < 1 and report["final_rate"] > 0  # both paths used
    assert (exit_model / "exits.safetensors").is_file()


@pytest.mark.parametrize("runtime", ["torch", "onnx-fp32", "onnx-int8", "onnx-int8-rows"])
def test_the_cascade_gives_each_text_one_answer_in_any_batch(exit_model, runtime, tmp_path):
    if runtime == "torch":
        model = load_classifier(exit_model, runtime="torch")
    else:
        pytest.importorskip("onnxruntime")
        from polarity.export import export_onnx

        quantize = "int8" if runtime.startswith("onnx-int8") else None
        folder = export_onnx(exit_model, tmp_path / "onnx", quantize, down_projections=(
            "rows" if runtime.endswith("rows") else "float"))
        card = json.loads((folder / "polarity.json").read_text())
        assert len(card["extra"]["stages"]) == 2
        model = load_classifier(folder)
    alone = [model.predict([t], batch_size=1)[0] for t in TEXTS]
    for batch_size, seed in [(7, 0), (64, 1)]:
        order = random.Random(seed).sample(range(len(TEXTS)), len(TEXTS))
        preds = model.predict([TEXTS[i] for i in order], batch_size=batch_size)
        for i, pred in zip(order, preds, strict=True):
            assert pred.label == alone[i].label
            assert pred.scores["POSITIVE"] == pytest.approx(alone[i].scores["POSITIVE"],
                                                            abs=1e-5)
    rows = synthetic_rows(80, seed=9)
    accuracy = sum(p.label == r["label"] for p, r in zip(alone, rows, strict=True)) / 80
    assert accuracy >= 0.85


def test_which_exit_answered_is_in_debug_output_only(exit_model, capsys, monkeypatch):
    from polarity.cli import main

    preds = load_classifier(exit_model, runtime="torch").predict(TEXTS)
    layers = {p.exit_layer for p in preds}
    assert layers == {1, None}  # some texts left after layer 1, the others went all the way
    assert "exit_layer" not in preds[0].to_json() and "exit_layer" in preds[0].to_json(True)
    monkeypatch.setenv("POLARITY_RUNTIME", "torch")
    assert main(["analyze", "--model", str(exit_model), "--json", "--debug", TEXTS[0]]) == 0
    assert "exit_layer" in capsys.readouterr().out


def test_onnx_stages_match_pytorch(exit_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from polarity.export import export_onnx

    folder = export_onnx(exit_model, tmp_path / "fp32", None)
    expected = load_classifier(exit_model, runtime="torch").positive_probabilities(TEXTS)
    got = load_classifier(folder).positive_probabilities(TEXTS, 9)
    assert got == pytest.approx(expected, abs=1e-5)


def test_thresholds_are_as_low_as_the_tolerance_allows():
    rng = np.random.default_rng(0)
    labels = rng.random(1000) < 0.5
    final = np.where(labels, 0.9, 0.1)  # the full model is always right
    # The exit is right when it is sure (confidence 0.95) and a coin flip when it is not.
    sure = rng.random(1000) < 0.6
    exit_p = np.where(sure, np.where(labels, 0.95, 0.05), rng.random(1000) * 0.2 + 0.4)
    [strict], report = choose_thresholds([exit_p], final, labels, tolerance=0.0)
    assert report["accuracy"] == 1.0 and report["exit_rates"][0] >= sure.mean()
    [loose], report = choose_thresholds([exit_p], final, labels, tolerance=0.003)
    assert loose < strict <= 0.95
    assert 0.997 <= report["accuracy"] < 1.0 and report["exit_rates"][0] > sure.mean()
    [none], report = choose_thresholds([1 - final], final, labels)  # an exit always wrong
    assert none > 1 and report["exit_rates"] == [0.0] and report["final_rate"] == 1.0
