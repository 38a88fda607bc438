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
