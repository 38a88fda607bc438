"""Hugging Face data sets as a source: a local save_to_disk folder, and the local copy a
config names for machines without the hub."""

import pytest

from polarity.data.inputs import iter_source
from polarity.data.sources import Record, Rejected, SourceSpec
from polarity.errors import InputError
from polarity.evaluate.data import load_test_set

datasets = pytest.importorskip("datasets")


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "sst2"
    data = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence": ["a gem of a film", "dull", ""],
                                             "label": [1, 0, 1], "idx": [0, 1, 2]}),
        "validation": datasets.Dataset.from_dict({"sentence": ["lovely", "awful"],
                                                  "label": [1, 0], "idx": [0, 1]})})
    data.save_to_disk(str(folder))
    return folder


def test_a_saved_folder_reads_like_the_hub(saved):
    items = list(iter_source(SourceSpec.parse(f"hf:{saved}?split=train&text_column=sentence"
                                              "&name=sst2-train")))
    assert items[:2] == [Record("a gem of a film", "POSITIVE", "sst2-train"),
                         Record("dull", "NEGATIVE", "sst2-train")]
    assert isinstance(items[2], Rejected) and items[2].reason == "missing_text"
    test = load_test_set(f"hf:{saved}?split=validation&text_column=sentence")
    assert test.texts == ["lovely", "awful"] and test.labels == ["POSITIVE", "NEGATIVE"]


def test_wrong_split_or_column_says_what_exists(saved):
    with pytest.raises(InputError, match=r"no split 'test'.*\['train', 'validation'\]"):
        list(iter_source(SourceSpec.parse(f"hf:{saved}?split=test&text_column=sentence")))
    with pytest.raises(InputError, match="text_column=sentence"):
        list(iter_source(SourceSpec.parse(f"hf:{saved}?split=train")))


def test_without_the_hub_the_local_copy_is_read(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    copy = tmp_path / "train.tsv"
    copy.write_text("text\tlabel\nfine film\t1\nbad film\t0\n")
    spec = SourceSpec(kind="hf", path="stanfordnlp/sst2", text_column="sentence",
                      name="sst2-train", local_copy=f"tsv:{copy}")
    items = list(iter_source(spec))
    assert items == [Record("fine film", "POSITIVE", "sst2-train"),
                     Record("bad film", "NEGATIVE", "sst2-train")]
    assert "reading its local copy" in capsys.readouterr().err
    with pytest.raises(InputError, match="give local_copy"):
        list(iter_source(spec.model_copy(update={"local_copy": None})))


@pytest.fixture
def fake_hub(monkeypatch):
    """The hub, without a network: load_dataset answers SST-2-shaped rows and counts calls."""
    calls = []

    def load_dataset(name, config=None, split="train"):
        calls.append((name, config, split))
        return datasets.Dataset.from_dict({"sentence": ["from the hub"], "label": [1]})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return calls


def _prepare(tmp_path, *flags, copy="missing.tsv"):
    from polarity.cli import main

    source = f"hf:stanfordnlp/sst2?text_column=sentence&local_copy=tsv:{tmp_path / copy}"
    return main(["prepare", *flags, "--source", source, "--output-dir", str(tmp_path / "out"),
                 "--split", "1,0,0", "--min-chars", "1"])


def test_the_cli_asks_the_hub_unless_told_offline(tmp_path, fake_hub, capsys):
    import os

    assert _prepare(tmp_path) == 0
    assert fake_hub == [("stanfordnlp/sst2", None, "train")]
    assert "from the hub" in (tmp_path / "out" / "train.jsonl").read_text()
    assert "HF_HUB_OFFLINE" not in os.environ  # the CLI no longer forces the hub off

    (tmp_path / "copy.tsv").write_text("text\tlabel\nfrom the local copy\t0\n")
    assert _prepare(tmp_path, "--offline", copy="copy.tsv") == 0
    assert len(fake_hub) == 1 and os.environ["HF_HUB_OFFLINE"] == "1"
    assert "from the local copy" in (tmp_path / "out" / "train.jsonl").read_text()
    assert "reading its local copy" in capsys.readouterr().err


def test_a_missing_local_copy_says_how_to_get_the_data(tmp_path, fake_hub, capsys):
    assert _prepare(tmp_path, "--offline") == 2
    err = capsys.readouterr().err
    assert "nor its local copy" in err and str(tmp_path / "missing.tsv") in err
    assert "run without --offline and with HF_HUB_OFFLINE unset" in err
    assert "Traceback" not in err and fake_hub == []
