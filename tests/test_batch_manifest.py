"""`polarity batch` reruns: shards sized to the input so that a killed job of any size resumes,
a rerun says how much it resumes, an input whose content changed is refused unless
``restart``, and outputs written before the input's content was recorded still resume."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import synthetic_rows

import polarity.batch.passes as passes
from polarity.batch import BatchOptions, run_batch
from polarity.batch.manifest import MANIFEST
from polarity.batch.shards import auto_plan, plan, shard_size
from polarity.errors import InputError

pytest.importorskip("vaderSentiment")


def write_jsonl(path, n, seed=0):
    rows = synthetic_rows(n, seed)
    path.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows))
    return [r["text"] for r in rows]


def scored_ids(out):
    return sorted(i for p in out.glob("part-*.parquet")
                  for i in pq.read_table(p).column("row_id").to_pylist())


def kill_at_shard(monkeypatch, index):
    real = passes.score_shard

    def dies(predictor, shard, *args, **kwargs):
        if shard.index == index:
            raise KeyboardInterrupt  # as if killed mid-run
        return real(predictor, shard, *args, **kwargs)

    monkeypatch.setattr(passes, "score_shard", dies)
    return lambda: monkeypatch.setattr(passes, "score_shard", real)


@pytest.mark.parametrize("rows, size", [(1, 50), (100, 50), (400, 50), (2_000, 250),
                                        (10_000, 1_250), (79_999, 10_000), (10**7, 10_000)])
def test_shards_are_sized_to_the_input(rows, size):
    assert shard_size(rows) == size
    assert size % 50 == 0 and (rows < 400 or -(-rows // size) >= 8)


def test_sized_shards_are_the_shards_of_that_size(tmp_path):
    with open(tmp_path / "a.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows([i, f"two\nlines {i}" if i % 9 == 0 else f"row {i}"] for i in range(1_234))
    write_jsonl(tmp_path / "b.jsonl", 777)
    pq.write_table(pa.table({"text": [f"t {i}" for i in range(3_001)]}), tmp_path / "c.parquet",
                   row_group_size=500)
    shards, size = auto_plan(tmp_path)
    assert size == shard_size(1_234 + 777 + 3_001) == 650
    assert shards == plan(tmp_path, size)
    for name in ("a.csv", "b.jsonl", "c.parquet"):
        assert auto_plan(tmp_path / name)[0] == plan(tmp_path / name, auto_plan(
            tmp_path / name)[1])


def test_a_killed_2000_row_job_resumes_and_says_how_much(tmp_path, monkeypatch, capsys):
    write_jsonl(tmp_path / "in.jsonl", 2_000)
    options = BatchOptions(model="vader", input=tmp_path / "in.jsonl", output=tmp_path / "out",
                           progress=False)
    revive = kill_at_shard(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run_batch(options)
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) == 5
    revive()
    summary = run_batch(BatchOptions(model="vader", input=tmp_path / "in.jsonl",
                                     output=tmp_path / "out", progress=False))
    assert "resuming: 5 of 8 parts done, 1,250 of 2,000 rows" in capsys.readouterr().err
    assert summary["shards"] == 8 and summary["shards_scored_this_run"] == 3
    assert scored_ids(tmp_path / "out") == list(range(2_000))


def test_a_given_shard_size_wins(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", 2_000)
    summary = run_batch(BatchOptions(model="vader", input=tmp_path / "in.jsonl",
                                     output=tmp_path / "out", shard_rows=1_000, progress=False))
    assert summary["shards"] == 2
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["shard_rows"] == 1_000


def test_a_rerun_over_a_changed_input_is_refused_unless_restart(tmp_path, capsys):
    texts = write_jsonl(tmp_path / "in.jsonl", 120)
    options = dict(model="vader", input=tmp_path / "in.jsonl", output=tmp_path / "out",
                   progress=False)
    run_batch(BatchOptions(**options))
    texts[7] = "an entirely different text, same path and same number of rows"
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    with pytest.raises(InputError, match=r"in.jsonl changed since .*--restart"):
        run_batch(BatchOptions(**options))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n"
                                               for t in texts[:60]))
    summary = run_batch(BatchOptions(**options, restart=True))
    assert "--restart: deleted" in capsys.readouterr().err
    assert summary["shards_scored_this_run"] == summary["shards"] == 2
    assert scored_ids(tmp_path / "out") == list(range(60))
    rows = pq.read_table(tmp_path / "out").to_pylist()
    assert texts[7] in {r["text"] for r in rows}


def test_other_settings_are_refused_and_restart_starts_over(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", 100)
    options = dict(model="vader", input=tmp_path / "in.jsonl", output=tmp_path / "out",
                   progress=False)
    run_batch(BatchOptions(**options, shard_rows=10))
    with pytest.raises(InputError, match=r"different shard_rows, shards; rerun with --restart"):
        run_batch(BatchOptions(**options, shard_rows=25))
    assert run_batch(BatchOptions(**options, shard_rows=25, restart=True))["shards"] == 4
    assert sorted(p.name for p in (tmp_path / "out").glob("part-*")) == [
        f"part-{i:05d}.parquet" for i in range(4)]


def test_an_output_of_the_earlier_format_resumes(tmp_path, monkeypatch, capsys):
    """A job started before this change (explicit --shard-rows, a manifest without the
    input's digest) is resumed with the same shards, by the same command or without the
    size."""
    write_jsonl(tmp_path / "in.jsonl", 2_500)
    out = tmp_path / "out"
    options = dict(model="vader", input=tmp_path / "in.jsonl", output=out, progress=False)
    revive = kill_at_shard(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_batch(BatchOptions(**options, shard_rows=1_000))
    revive()
    manifest = json.loads((out / MANIFEST).read_text())
    earlier = {k: manifest[k] for k in ("input", "shard_rows", "text_column", "model", "shards",
                                        "rows")}  # the keys the earlier version wrote
    (out / MANIFEST).write_text(json.dumps(earlier, indent=2) + "\n")
    assert run_batch(BatchOptions(**options))["shards_scored_this_run"] == 2
    err = capsys.readouterr().err
    assert "resuming: 1 of 3 parts done, 1,000 of 2,500 rows" in err
    assert "did not record the input's content" in err
    assert scored_ids(out) == list(range(2_500))
    assert json.loads((out / MANIFEST).read_text()) == earlier
    assert run_batch(BatchOptions(**options, shard_rows=1_000))["shards_scored_this_run"] == 0


def test_explicit_shards_keep_their_layout(tmp_path):
    """``--shard-rows N`` plans what it always planned: shard k holds the non-blank lines
    k*N .. (k+1)*N - 1 and starts at the first one's byte offset."""
    lines = [json.dumps({"text": f"row {i}"}) for i in range(2_345)]
    lines[10:10] = ["", "  "]  # blank lines are not rows
    data = ("\n".join(lines) + "\n").encode()
    (tmp_path / "in.jsonl").write_bytes(data)
    offsets, position = [], 0
    for line in data.splitlines(keepends=True):
        if line.strip():
            offsets.append(position)
        position += len(line)
    shards = plan(tmp_path / "in.jsonl", 1_000)
    assert [(s.first_row, s.rows, s.start) for s in shards] == [
        (0, 1_000, offsets[0]), (1_000, 1_000, offsets[1_000]), (2_000, 345, offsets[2_000])]
    assert [s.end for s in shards] == [offsets[1_000], offsets[2_000], len(data)]


def test_parts_without_a_manifest_are_kept(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", 100)
    options = dict(model="vader", input=tmp_path / "in.jsonl", output=tmp_path / "out",
                   progress=False)
    run_batch(BatchOptions(**options))
    (tmp_path / "out" / MANIFEST).unlink()
    assert run_batch(BatchOptions(**options))["shards_scored_this_run"] == 0
    assert scored_ids(tmp_path / "out") == list(range(100))
