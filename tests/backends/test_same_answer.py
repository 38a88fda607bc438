"""Same text, same answer: whatever the batch size, the neighbours and their order, on every
runtime of the encoder tier (labels exactly, probabilities within 1e-5)."""

import random
from pathlib import Path

import pytest
from helpers import FILLER, synthetic_rows

from polarity.predictor import load_classifier

TEXTS = ([r["text"] for r in synthetic_rows(90, seed=21)]
         + [" ".join(random.Random(i).choices(FILLER, k=20 + 7 * i)) + " great" for i in range(6)]
         + ["sad " * 90])


@pytest.fixture(scope="module", params=["torch", "onnx-int8"])
def model(request, trained_tiny, tmp_path_factory):
    if request.param == "torch":
        return load_classifier(trained_tiny, runtime="torch")
    pytest.importorskip("onnxruntime")
    from polarity.export import export_onnx

    folder = export_onnx(trained_tiny, tmp_path_factory.mktemp("same") / "int8", "int8")
    return load_classifier(folder)


def test_answers_do_not_depend_on_batch_size_neighbours_or_order(model):
    alone = {t: model.predict([t], batch_size=1)[0] for t in TEXTS}
    for batch_size, seed in [(1, 0), (7, 1), (64, 2), (7, 3)]:
        shuffled = random.Random(seed).sample(TEXTS, len(TEXTS))
        for text, pred in zip(shuffled, model.predict(shuffled, batch_size=batch_size),
                              strict=True):
            assert pred.label == alone[text].label, (batch_size, text)
            assert pred.scores["POSITIVE"] == pytest.approx(alone[text].scores["POSITIVE"],
                                                            abs=1e-5)
            assert pred.windows == alone[text].windows


def test_every_entry_point_gives_the_same_answer(trained_tiny, tmp_path, capsys, monkeypatch):
    """Python, the CLI, the HTTP API and `polarity batch` all answer through the same
    Predictor: the same text gets the same label and probability from each."""
    import json
    import sys

    import pyarrow.parquet as pq

    sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
    from serve_helpers import KEY, make_client, wait_ready

    from polarity.batch import BatchOptions, run_batch
    from polarity.cli import main
    from polarity.contract import LoadOptions

    texts = TEXTS[:12]  # every entry point on the runtime users get: auto, ONNX int8
    python = [p.scores["POSITIVE"] for p in load_classifier(trained_tiny).predict(texts)]
    assert load_classifier(trained_tiny).info.backend == "onnx"
    assert main(["analyze", "--model", str(trained_tiny), "--json", *texts]) == 0
    cli = [json.loads(line)["scores"]["POSITIVE"]
           for line in capsys.readouterr().out.splitlines()]
    with make_client(predictor=None, model_path=str(trained_tiny)) as client:
        wait_ready(client)
        http = [client.post("/api/v1/analyze", json={"text": t},
                            headers={"X-API-Key": KEY}).json()["scores"]["POSITIVE"]
                for t in texts]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    run_batch(BatchOptions(model=str(trained_tiny), input=tmp_path / "in.jsonl",
                           output=tmp_path / "out", load=LoadOptions(), progress=False))
    rows = sorted(pq.read_table(tmp_path / "out").to_pylist(), key=lambda r: r["row_id"])
    batch = [r["scores"]["POSITIVE"] for r in rows]
    for other in (cli, http, batch):
        assert other == pytest.approx(python, abs=1e-5)
