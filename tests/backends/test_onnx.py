"""The encoder tier on ONNX Runtime: the exported graph gives the torch model's answers."""

from pathlib import Path

import numpy as np
import pytest
from helpers import synthetic_rows

from polarity.predictor import load_classifier

pytest.importorskip("onnxruntime")
TEXTS = [r["text"] for r in synthetic_rows(24, seed=11)] + ["x", "great " * 200]


@pytest.fixture(scope="module")
def exported(trained_tiny, tmp_path_factory):
    from polarity.export import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    return export_onnx(trained_tiny, root / "fp32", None), export_onnx(trained_tiny,
                                                                        root / "int8", "int8")


def test_fp32_graph_matches_pytorch(trained_tiny, exported):
    torch_model = load_classifier(trained_tiny, runtime="torch")
    onnx_model = load_classifier(exported[0])
    assert onnx_model.info.backend == "onnx"
    expected = torch_model.positive_probabilities(TEXTS, 5)
    assert onnx_model.positive_probabilities(TEXTS, 7) == pytest.approx(expected, abs=1e-5)


def test_int8_graph_stays_close(trained_tiny, exported):
    expected = load_classifier(trained_tiny, runtime="torch").predict(TEXTS)
    got = load_classifier(exported[1]).predict(TEXTS)
    agree = sum(a.label == b.label for a, b in zip(expected, got, strict=True))
    assert agree >= len(TEXTS) - 2
    assert max(abs(a.scores["POSITIVE"] - b.scores["POSITIVE"])
               for a, b in zip(expected, got, strict=True)) < 0.15


def test_row_shards_cover_every_row_once():
    from polarity.backends.onnx import shards

    for rows in range(0, 40):
        for parts in (1, 2, 3, 8):
            got = [i for part in shards(rows, parts) for i in range(rows)[part]]
            assert got == list(range(rows))
            assert len(shards(rows, parts)) == max(1, min(parts, rows))


@pytest.mark.parametrize("graph", [0, 1], ids=["fp32", "int8"])
def test_a_batch_cut_into_shards_gets_the_answers_of_one_call(exported, graph):
    one = load_classifier(exported[graph], threads=1)
    assert one.backend.pool is None
    for threads in (2, 3, 5):
        sharded = load_classifier(exported[graph], threads=threads)
        assert sharded.info.threads == threads
        for batch_size in (1, 4, 26):
            expected = one.predict(TEXTS, batch_size=batch_size)
            got = sharded.predict(TEXTS, batch_size=batch_size)
            assert [p.label for p in got] == [p.label for p in expected]
            assert [p.scores["POSITIVE"] for p in got] == pytest.approx(
                [p.scores["POSITIVE"] for p in expected], abs=1e-6)


def test_exported_folder_loads_on_its_own(exported):
    import json

    card = json.loads((exported[1] / "polarity.json").read_text())
    assert card["backend"] == "onnx" and card["extra"]["file"] == "model.int8.onnx"
    assert (exported[1] / "tokenizer.json").is_file()
    assert not (exported[1] / "adapter").exists()


def test_runtime_onnx_exports_once_and_reuses_the_cache(trained_tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("POLARITY_CACHE", str(tmp_path))
    first = load_classifier(trained_tiny, runtime="onnx")
    [folder] = [p for p in (tmp_path / "onnx").iterdir() if p.is_dir()]
    stamp = (folder / "model.int8.onnx").stat().st_mtime_ns
    second = load_classifier(trained_tiny, runtime="onnx")
    assert (folder / "model.int8.onnx").stat().st_mtime_ns == stamp
    assert first.info.backend == second.info.backend == "onnx"
    assert first.predict(TEXTS[:4]) == second.predict(TEXTS[:4])


def test_cli_export_onnx(trained_tiny, tmp_path):
    from polarity.cli import main

    assert main(["export", "--model", str(trained_tiny), "--output", str(tmp_path / "o"),
                 "--onnx", "--quantize", "int8"]) == 0
    assert (tmp_path / "o" / "model.int8.onnx").is_file()
    assert main(["export", "--model", str(trained_tiny), "--output", str(tmp_path / "p")]) == 2
    assert main(["export", "--model", str(trained_tiny), "--output", str(tmp_path / "q"),
                 "--onnx", "--int8-down-projections", "rows"]) == 2  # needs --quantize int8


def test_int8_is_static_and_records_its_calibration(exported):
    import json

    import onnx

    card = json.loads((exported[1] / "polarity.json").read_text())
    assert "measured on 256 texts" in card["extra"]["calibration"]
    assert (exported[1] / "calibration.json").is_file()
    ops = {n.op_type for n in onnx.load(str(exported[1] / "model.int8.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "DynamicQuantizeLinear" not in ops
    assert card["extra"]["int8_down_projections"] == "float"


def test_down_projections_in_int8_per_token(trained_tiny, exported, tmp_path):
    """``--int8-down-projections rows``: static int8 (QDQ) products, and the FFN
    down-projections in int8 with a scale per token; only the head and the products of two
    activations stay float. Still the model's answers, whatever the batch."""
    import json

    import onnx
    from onnx import numpy_helper

    from polarity.cli import main

    assert main(["export", "--model", str(trained_tiny), "--output", str(tmp_path / "rows"),
                 "--onnx", "--quantize", "int8", "--int8-down-projections", "rows"]) == 0
    folder = tmp_path / "rows"
    card = json.loads((folder / "polarity.json").read_text())
    assert card["extra"]["int8_down_projections"] == "rows"
    graph = onnx.load(str(folder / "model.int8.onnx")).graph
    weights = {init.name: init for init in graph.initializer}
    float_weights = [n.name for n in graph.node if n.op_type == "MatMul"
                     and any(i in weights and weights[i].data_type == onnx.TensorProto.FLOAT
                             for i in n.input)]
    assert float_weights == []
    per_row = [n for n in graph.node if n.op_type == "MatMulIntegerToFloat"]
    assert len(per_row) == 2  # the tiny encoder's two layers (tests/helpers.py)
    for node in per_row:  # weights every x86 CPU sums without saturating
        assert np.abs(numpy_helper.to_array(weights[node.input[1]])).max() <= 63
    expected = load_classifier(exported[0]).positive_probabilities(TEXTS)
    model = load_classifier(folder)
    got = {size: model.positive_probabilities(TEXTS, size) for size in (1, 5, 26)}
    for size in (5, 26):  # float sums in another order, nothing more
        assert got[size] == pytest.approx(got[1], abs=1e-6)
    assert np.abs(np.asarray(got[1]) - expected).max() < 0.15


def test_stored_ranges_are_reused_without_the_training_file(trained_tiny, exported, tmp_path):
    import json
    import shutil

    from polarity.errors import InputError
    from polarity.export import export_onnx

    moved = tmp_path / "moved"
    shutil.copytree(trained_tiny, moved, ignore=shutil.ignore_patterns("checkpoints"))
    card = json.loads((moved / "polarity.json").read_text())
    card["training"]["data"]["train_file"] = str(tmp_path / "gone.jsonl")
    (moved / "polarity.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="--calibration-file"):
        export_onnx(moved, tmp_path / "fails", "int8")
    shutil.copyfile(exported[1] / "calibration.json", moved / "calibration.json")
    again = export_onnx(moved, tmp_path / "again", "int8")
    assert "stored with the model" in json.loads((again / "polarity.json").read_text()
                                                 )["extra"]["calibration"]
    a = load_classifier(exported[1]).positive_probabilities(TEXTS)
    assert load_classifier(again).positive_probabilities(TEXTS) == a


def test_two_processes_building_the_onnx_cache_at_once_export_it_once(trained_tiny, tmp_path):
    import os
    import subprocess
    import sys

    script = ("import sys; from pathlib import Path; from polarity.export import cached_onnx;"
              "print(cached_onnx(Path(sys.argv[1])))")
    env = {**os.environ, "POLARITY_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(trained_tiny)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    folders = {out.decode().strip() for out, _ in outs}
    assert len(folders) == 1
    [folder] = folders
    assert load_classifier(folder).predict(TEXTS[:3])
    assert not list((tmp_path / "onnx").glob("*.partial"))


def test_the_export_cache_key_covers_version_base_and_a_safe_name(trained_tiny, tmp_path,
                                                                  monkeypatch):
    import shutil

    import polarity.version
    from polarity.export import onnx_cache_folder
    from polarity.modelcard import read_card

    model = tmp_path / "model"
    shutil.copytree(trained_tiny, model)
    card = read_card(model)
    before = onnx_cache_folder(model)
    monkeypatch.setattr(polarity.version, "__version__", "9.9.9")
    assert onnx_cache_folder(model) != before  # a new polarity exports anew
    monkeypatch.undo()
    base = Path(card.base_model)
    copy = tmp_path / "base"
    shutil.copytree(base, copy)
    card.base_model = str(copy)
    card.save(model)
    keyed = onnx_cache_folder(model)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert onnx_cache_folder(model) != keyed  # other base weights or tokenizer: anew
    card.name = "../../etc/evil name"
    card.save(model)
    folder = onnx_cache_folder(model)
    assert folder.parent.name == "onnx" and "/" not in folder.name and ".." not in folder.name


def test_the_export_cache_key_covers_every_file_of_the_folder(trained_tiny, tmp_path):
    """A changed adapter_config.json (lora_alpha scales every LoRA update) is another model:
    the default runtime must export it anew, not serve the old graph."""
    import json
    import shutil

    from polarity.export import onnx_cache_folder

    model = tmp_path / "model"
    shutil.copytree(trained_tiny, model)
    keys = {onnx_cache_folder(model)}
    config = model / "adapter" / "adapter_config.json"
    settings = json.loads(config.read_text())
    config.write_text(json.dumps({**settings, "lora_alpha": settings["lora_alpha"] * 4}))
    keys.add(onnx_cache_folder(model))
    (model / "notes" / "deep").mkdir(parents=True)
    (model / "notes" / "deep" / "any.txt").write_text("x")
    keys.add(onnx_cache_folder(model))
    assert len(keys) == 3
    (model / "checkpoints" / "step-8").mkdir(parents=True)  # training's resume state
    (model / "checkpoints" / "step-8" / "optimizer.pt").write_bytes(b"\0" * 100)
    assert onnx_cache_folder(model) in keys
