"""`polarity augment`: new texts near the data, deterministic, never an excluded text."""

import json

from helpers import synthetic_rows

from polarity.cli import main
from polarity.data.augment import augment, normalise

TEXTS = [r["text"] for r in synthetic_rows(200, seed=4)]


def test_augment_is_deterministic_and_uses_every_operation():
    a = augment(TEXTS, 400, seed=7)
    assert a == augment(TEXTS, 400, seed=7) and a != augment(TEXTS, 400, seed=8)
    assert len(a) == 400
    assert {r["source"] for r in a} == {"augment/span", "augment/dropout", "augment/join",
                                       "augment/replace"}
    keys = [normalise(r["text"]) for r in a]
    assert len(set(keys)) == len(keys)  # no duplicates
    assert not set(keys) & {normalise(t) for t in TEXTS}  # nothing copied from the input


def test_an_excluded_text_is_never_emitted():
    free = augment(TEXTS, 300, seed=1)
    banned = [free[i]["text"].upper() for i in range(0, 300, 3)]  # case and spaces ignored
    kept = augment(TEXTS, 300, seed=1, exclude=banned)
    assert not {normalise(r["text"]) for r in kept} & {normalise(t) for t in banned}


def test_cli_augment(tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": t, "label": "POSITIVE"}) + "\n"
                             for t in TEXTS))
    dev = tmp_path / "dev.tsv"
    dev.write_text("text\tlabel\n" + "".join(f"{t}\t1\n" for t in TEXTS[:5]))
    out = tmp_path / "aug.jsonl"
    assert main(["augment", "--input", str(train), "--output", str(out), "--count", "50",
                 "--exclude", str(dev)]) == 0
    assert len(out.read_text().splitlines()) == 50
    assert json.loads(capsys.readouterr().out)["excluded_texts"] == 5
