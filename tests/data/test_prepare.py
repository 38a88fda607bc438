import json
from collections import Counter
from pathlib import Path

import pytest

from polarity.data.prepare import PrepareConfig, prepare
from polarity.data.writers import read_rows
from polarity.errors import InputError

FIX = Path(__file__).parent.parent / "fixtures"


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def qc_rows() -> list[tuple[str, str]]:
    rows = [(f"distinct positive review number {i}", "1") for i in range(60)]
    rows += [(f"distinct negative review number {i}", "0") for i in range(30)]
    rows += [
        ("too short", "1"),                              # 9 characters
        ("distinct positive review number 1", "1"),      # exact duplicate
        ("DISTINCT positive review, number 2!!", "1"),   # normalised duplicate
        ("this text has both labels", "1"),
        ("this text has both labels", "0"),              # conflict (counted as duplicate)
        ("label is not valid at all", "neutral"),
        ("", "1"),
    ]
    return rows


def run(tmp_path, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = write_csv(tmp_path / "in.csv", qc_rows())
    config = PrepareConfig(sources=[f"csv:{src}"], output_dir=tmp_path / "out", **kw)
    return prepare(config, progress=False), tmp_path / "out"


def test_quality_control_counts_every_dropped_row(tmp_path):
    stats, out = run(tmp_path)
    assert stats["rows_in"] == 97
    assert stats["dropped"] == {"too_short": 1, "duplicate_exact": 2, "duplicate_normalized": 1,
                                "conflicting_labels": 1, "neutral": 1, "missing_text": 1}
    assert stats["rows_out"] == 90
    assert stats["rows_in"] == stats["rows_out"] + sum(stats["dropped"].values())
    assert json.loads((out / "stats.json").read_text())["rows_out"] == 90
    texts = [r["text"] for s in ("train", "val", "test") for r in read_rows(out / f"{s}.jsonl")]
    assert "this text has both labels" not in texts
    assert len(texts) == len(set(texts)) == 90


def test_split_is_stratified_80_10_10(tmp_path):
    stats, _ = run(tmp_path)
    assert stats["splits"]["train"] == {"rows": 72, "NEGATIVE": 24, "POSITIVE": 48}
    assert stats["splits"]["val"] == {"rows": 9, "NEGATIVE": 3, "POSITIVE": 6}
    assert stats["splits"]["test"] == {"rows": 9, "NEGATIVE": 3, "POSITIVE": 6}


def test_split_is_deterministic_and_seeded(tmp_path):
    _, out1 = run(tmp_path / "a")
    _, out2 = run(tmp_path / "b")
    _, out3 = run(tmp_path / "c", seed=1)
    a = (out1 / "test.jsonl").read_text()
    assert a == (out2 / "test.jsonl").read_text()
    assert a != (out3 / "test.jsonl").read_text()


def test_balance_downsamples_majority(tmp_path):
    stats, _ = run(tmp_path, balance=True)
    assert stats["classes"] == {"NEGATIVE": 30, "POSITIVE": 30}
    assert stats["dropped"]["balanced_out"] == 30


def test_parquet_output(tmp_path):
    pytest.importorskip("pyarrow")
    _, out = run(tmp_path, format="parquet")
    rows = list(read_rows(out / "train.parquet"))
    assert len(rows) == 72 and set(rows[0]) == {"text", "label", "source"}


def test_several_sources_are_counted_by_source(tmp_path):
    config = PrepareConfig(sources=[f"amazon:{FIX}/amazon_2018.jsonl",
                                    f"sentiment140:{FIX}/sentiment140.csv"],
                           output_dir=tmp_path)
    stats = prepare(config, progress=False)
    assert stats["sources"] == {"amazon": {"rows_in": 3, "rows_out": 3},
                                "sentiment140": {"rows_in": 2, "rows_out": 2}}
    assert Counter(stats["dropped"]) == {"malformed": 3, "missing_text": 1, "invalid_label": 2,
                                         "neutral": 1}


def test_nothing_survives_is_an_error(tmp_path):
    src = write_csv(tmp_path / "in.csv", [("short", "1")])
    with pytest.raises(InputError, match="no rows survived"):
        prepare(PrepareConfig(sources=[f"csv:{src}"], output_dir=tmp_path / "o"), progress=False)


def test_a_run_killed_while_writing_leaves_the_previous_splits_whole(tmp_path, monkeypatch):
    stats, out = run(tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import polarity.data.prepare as prepare_module

    real = prepare_module.open_writer

    class Dying:
        def __init__(self, writer):
            self.writer, self.n = writer, 0

        def write(self, row):
            self.n += 1
            if self.n > 5:
                raise KeyboardInterrupt  # killed midway through the train split
            self.writer.write(row)

        def close(self):
            self.writer.close()

    monkeypatch.setattr(prepare_module, "open_writer", lambda *a: Dying(real(*a)))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no partial files left


def test_split_fractions_validated():
    with pytest.raises(ValueError):
        PrepareConfig(sources=["csv:x.csv"], split=(0.5, 0.1, 0.1))


def test_a_lone_surrogate_row_is_counted_not_fatal(tmp_path):
    rows = [json.dumps({"overall": 5, "reviewText": f"a fine product, review {i}"})
            for i in range(20)]
    rows.insert(3, '{"overall": 1, "reviewText": "broken \\ud800 half an emoji here"}')
    (tmp_path / "a.jsonl").write_text("\n".join(rows) + "\n")
    stats = prepare(PrepareConfig(sources=[f"amazon:{tmp_path / 'a.jsonl'}"],
                                  output_dir=tmp_path / "out"), progress=False)
    assert stats["dropped"]["invalid_unicode"] == 1 and stats["rows_out"] == 20


def test_a_truncated_gzip_is_one_clear_line_from_the_cli(tmp_path, capsys):
    import gzip

    from polarity.cli import main

    rows = "".join(json.dumps({"overall": 5, "reviewText": f"good thing number {i}"}) + "\n"
                   for i in range(2000))
    whole = gzip.compress(rows.encode())
    (tmp_path / "a.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    code = main(["prepare", "--source", f"amazon:{tmp_path / 'a.jsonl.gz'}", "--output-dir",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "a.jsonl.gz: the file breaks off after line" in err and "truncated" in err


def test_a_gzip_bomb_and_huge_rows_are_counted_never_read_whole(tmp_path):
    import gzip
    import tracemalloc

    good = [json.dumps({"text": f"a distinct fine review {i}", "label": i % 2}) for i in range(20)]
    with gzip.open(tmp_path / "bomb.jsonl.gz", "wb") as f:  # 48 MB in about 50 KB
        f.write((good[0] + "\n").encode())
        f.write(b'{"text": "' + b"a" * (48 * 2**20) + b'", "label": 1}\n')
        f.write(("\n".join(good[1:]) + "\n").encode())
    rows = [("b" * (3 * 2**20), "1"), *((f"another distinct review {i}", str(i % 2))
                                       for i in range(20))]
    write_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "out"
    tracemalloc.start()
    try:
        stats = prepare(PrepareConfig(sources=[f"jsonl:{tmp_path / 'bomb.jsonl.gz'}",
                                               f"csv:{tmp_path / 'big.csv'}"],
                                      output_dir=out), progress=False)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert peak < 16  # the 48 MB row was never held whole
    assert stats["dropped"]["too_large"] == 2 and stats["rows_out"] == 40
    assert stats["dropped_examples"]["too_large"] == f"{tmp_path / 'bomb.jsonl.gz'}:2"
    assert sorted(p.name for p in out.iterdir()) == ["stats.json", "test.jsonl", "train.jsonl",
                                                     "val.jsonl"]


@pytest.mark.parametrize("balance", [False, True])
def test_the_writing_bar_ends_at_the_rows_written(tmp_path, capsys, balance):
    src = write_csv(tmp_path / "in.csv", qc_rows())  # a conflict and, balanced, 30 left out
    stats = prepare(PrepareConfig(sources=[f"csv:{src}"], output_dir=tmp_path / "out",
                                  balance=balance), progress=True)
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    last = [line for line in bar if line.startswith("prepare: writing")][-1]
    assert f"{stats['rows_out']}/{stats['rows_out']} " in last, last
    assert stats["rows_out"] == (60 if balance else 90)
