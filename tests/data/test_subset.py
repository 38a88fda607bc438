"""`polarity subset` never takes a text of an excluded evaluation set, named as a file or as
a data set source (SST-2 dev from the hub, or its local copy where the hub is off)."""

import json

from polarity.data.subset import SubsetConfig, subset


def test_excluded_texts_are_never_taken_from_a_file_or_a_data_set(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the local copy is read, as on this machine
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    rows = [{"text": f"a fine long review number {i}", "label": "POSITIVE", "source": "s"}
            for i in range(6)]
    rows += [{"text": f"a dull long review number {i}", "label": "NEGATIVE", "source": "s"}
             for i in range(6)]
    for split in ("train", "val"):
        (prepared / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "dev.tsv").write_text("text\tlabel\na fine long review number 0\t1\n"
                                      "a dull long review number 1\t0\n")
    (tmp_path / "curated.jsonl").write_text('{"text": "A fine long review, number 2!"}\n')
    dev = ("hf:stanfordnlp/sst2?split=validation&text_column=sentence"
           f"&local_copy=tsv:{tmp_path / 'dev.tsv'}")
    stats = subset(SubsetConfig(prepared_dir=prepared, output_dir=tmp_path / "out",
                                train_rows={"s": 8}, min_chars=5,
                                exclude=[dev, str(tmp_path / "curated.jsonl")]))
    assert stats["excluded_keys"] == 3
    taken = {json.loads(line)["text"] for line in (tmp_path / "out" / "train.jsonl").open()}
    assert len(taken) == 8
    assert not taken & {"a fine long review number 0", "a dull long review number 1",
                        "a fine long review number 2"}
