"""The long-text reader: texts of more than one window get its answer, shorter ones keep
theirs exactly, and a verdict in the last sentence decides."""

import json
import random
import shutil

import numpy as np
import pytest
from helpers import FILLER, NEGATIVE_WORDS, POSITIVE_WORDS, synthetic_rows, write_jsonl

from polarity.backends.long_texts import LONG_TEXTS_FILE, buckets
from polarity.errors import ModelNotFoundError
from polarity.predictor import load_classifier
from polarity.train.long_texts import fit_long_reader


def filler_sentences(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice(FILLER) for _ in range(7)) + " ." for _ in range(n)]


def long_rows(n: int, seed: int) -> list[dict]:
    """Several sentences that say nothing, then the verdict: the label is the last one's."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = i % 2 == 0
        word = rng.choice(POSITIVE_WORDS if positive else NEGATIVE_WORDS)
        text = " ".join(filler_sentences(rng, rng.randint(4, 7)) + [f"in the end it was {word} ."])
        rows.append({"text": text, "label": "POSITIVE" if positive else "NEGATIVE"})
    return rows


@pytest.fixture(scope="module")
def with_reader(trained_tiny, tmp_path_factory):
    """The tiny trained model (30-token windows) with a reader fitted on long toy texts."""
    root = tmp_path_factory.mktemp("long")
    folder = shutil.copytree(trained_tiny, root / "model")
    train = write_jsonl(root / "train.jsonl", long_rows(400, seed=1)
                        + synthetic_rows(50, seed=3))  # short rows are left out
    val = write_jsonl(root / "val.jsonl", long_rows(100, seed=2))
    section = fit_long_reader(folder, train, val, stack_rows=150, bits=14, progress=False)
    return folder, section


def test_buckets_are_distinct_sorted_and_see_word_order():
    found = buckets([5, 6, 5, 6], 10)
    assert found.tolist() == sorted(set(found.tolist())) and found.size == 4  # 5, 6, (5,6), (6,5)
    assert not np.array_equal(buckets([5, 6], 20), buckets([6, 5], 20))
    assert buckets([5, 6], 12).max() < 1 << 12


def test_lexical_scores_of_many_texts_are_each_texts_own():
    from polarity.backends.long_texts import LongTextReader

    rng = np.random.default_rng(0)
    ids = [rng.integers(0, 500, n).tolist() for n in (0, 1, 2, 40, 300)]
    weights = rng.standard_normal(1 << 10).astype(np.float32)
    reader = LongTextReader(weights, 1.0, 0.0, 0.0)
    one_by_one = [reader.lexical_scores([t])[0] for t in ids]
    assert reader.lexical_scores(ids).tolist() == one_by_one
    assert one_by_one[0] == 0.0
    found = buckets(ids[3], 10)
    assert one_by_one[3] == pytest.approx(weights[found].sum() / np.sqrt(found.size))


def test_the_reader_is_fitted_on_long_texts_and_stored_in_the_folder(with_reader):
    folder, section = with_reader
    card = json.loads((folder / "polarity.json").read_text())
    assert card["extra"]["long_texts"]["bits"] == 14
    assert (folder / LONG_TEXTS_FILE).stat().st_size > 2 ** 14  # float16 weights + header
    assert section["trained_on"]["rule_rows"] == 150
    assert section["trained_on"]["bucket_rows"] == 450  # short rows teach the bag too
    assert section["validation"]["rows"] == 100
    after = section["validation"]["after"]
    assert after["accuracy"] >= 0.95 and after["accuracy"] >= section["validation"][
        "before"]["accuracy"]


def test_short_texts_keep_their_answers_exactly(trained_tiny, with_reader):
    short = [r["text"] for r in synthetic_rows(40, seed=9)]
    before = load_classifier(trained_tiny).positive_probabilities(short)
    after = load_classifier(with_reader[0]).positive_probabilities(short)
    assert [p.windows for p in load_classifier(with_reader[0]).predict(short)] == [1] * 40
    assert after == before


def test_the_verdict_in_the_last_sentence_decides(with_reader):
    model = load_classifier(with_reader[0])  # ONNX, as users run it
    rng = random.Random(7)
    start = " ".join(filler_sentences(rng, 6))
    good, bad = model.predict([f"{start} in the end it was wonderful .",
                               f"{start} in the end it was terrible ."])
    assert good.windows > 1 and bad.windows > 1
    assert (good.label, bad.label) == ("POSITIVE", "NEGATIVE")
    fresh = long_rows(60, seed=11)
    labels = [p.label for p in model.predict([r["text"] for r in fresh])]
    assert np.mean([a == r["label"] for a, r in zip(labels, fresh, strict=True)]) >= 0.9


def test_a_long_text_gets_the_same_answer_alone_and_in_any_batch(with_reader):
    model = load_classifier(with_reader[0])
    rows = [r["text"] for r in long_rows(6, seed=5) + synthetic_rows(6, seed=6)]
    together = model.predict(rows, batch_size=4)
    alone = [model.predict([t])[0] for t in rows]
    assert [p.label for p in together] == [p.label for p in alone]
    # Padding beside other lengths moves int8 activations in the last digits only.
    assert [p.scores["POSITIVE"] for p in together] == pytest.approx(
        [p.scores["POSITIVE"] for p in alone], abs=1e-6)


def test_torch_and_onnx_read_long_texts_alike(with_reader):
    rows = [r["text"] for r in long_rows(10, seed=8)]
    onnx = load_classifier(with_reader[0]).predict(rows)
    torch = load_classifier(with_reader[0], runtime="torch").predict(rows)
    assert [p.label for p in onnx] == [p.label for p in torch]


def test_a_card_whose_reader_file_is_missing_says_so(with_reader, tmp_path):
    folder = shutil.copytree(with_reader[0], tmp_path / "copy")
    (folder / LONG_TEXTS_FILE).unlink()
    with pytest.raises(ModelNotFoundError, match="long_texts.safetensors is missing"):
        load_classifier(folder, runtime="torch")


def test_fit_long_says_what_is_missing(trained_tiny, tmp_path, capsys):
    from polarity.cli import main

    folder = shutil.copytree(trained_tiny, tmp_path / "model")
    short = write_jsonl(tmp_path / "short.jsonl", synthetic_rows(40, seed=4))
    assert main(["fit-long", "--model", str(folder), "--train-file", str(short),
                 "--val-file", str(short)]) == 2
    assert "0 texts longer than one window" in capsys.readouterr().err
    card = json.loads((folder / "polarity.json").read_text())
    assert "long_texts" not in card["extra"]  # nothing written
