"""Same text, same answer: whatever the batch size, the neighbours and their order, on every
runtime of the encoder tier (labels exactly, probabilities within 1e-5)."""

import random

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
