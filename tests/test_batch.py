"""`polarity batch`: streaming shards, bad rows reported, exactly-once resume, local vs Ray."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import synthetic_rows

from polarity.batch import BatchOptions, run_batch
from polarity.batch.shards import plan, read_shard
from polarity.contract import LoadOptions
from polarity.errors import InputError
from polarity.predictor import load_classifier

TORCH = LoadOptions(runtime="torch")


def write_csv(path, n, seed=0, bad=True):
    rows = synthetic_rows(n, seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "note"])
        for i, r in enumerate(rows):
            note = "line one\nline two" if i % 7 == 0 else "plain"  # quoted newline
            w.writerow([i, r["text"], note])
        if bad:
            f.write("999,too,many,fields\n")
            w.writerow([1000, "", "empty text"])
    return [r["text"] for r in rows]


def read_output(folder):
    table = pa.concat_tables(
        [pq.read_table(p) for p in sorted(folder.glob("part-*.parquet"))],
        promote_options="default")
    return table.sort_by("row_id").to_pylist()


def test_csv_shards_cover_every_record_once(tmp_path):
    texts = write_csv(tmp_path / "in.csv", 50, bad=False)
    for shard_rows in (1, 7, 50, 500):
        got = [row["text"] for s in plan(tmp_path / "in.csv", shard_rows)
               for _, row, _ in read_shard(s)]
        assert got == texts


def test_local_batch_scores_every_row_and_reports_bad_ones(trained_tiny, tmp_path):
    texts = write_csv(tmp_path / "in.csv", 120)
    out = tmp_path / "out"
    summary = run_batch(BatchOptions(model=str(trained_tiny), load=TORCH, input=tmp_path / "in.csv",
                                     output=out, shard_rows=25, progress=False))
    assert summary["scored_rows"] == 120 and summary["error_rows"] == 2
    assert pq.read_table(out).num_rows == 120  # the folder reads as one Parquet data set
    rows = read_output(out)
    assert [r["row_id"] for r in rows] == list(range(120))
    assert [r["text"] for r in rows] == texts and rows[0]["note"] == "line one\nline two"
    expected = load_classifier(trained_tiny, runtime="torch").predict(texts)
    for row, pred in zip(rows, expected, strict=True):
        assert row["predicted_sentiment"] == pred.label
        assert row["confidence"] == pytest.approx(pred.confidence, abs=1e-6)
        assert row["scores"]["POSITIVE"] == pytest.approx(pred.scores["POSITIVE"], abs=1e-6)
    errors = [json.loads(line) for line in (out / "_errors.jsonl").read_text().splitlines()]
    assert [e["row_id"] for e in errors] == [120, 121]
    assert "fields" in errors[0]["error"] and "empty" in errors[1]["error"]


def test_jsonl_and_parquet_inputs(trained_tiny, tmp_path):
    rows = synthetic_rows(30, seed=3)
    lines = [json.dumps({"text": r["text"], "n": i}) for i, r in enumerate(rows)]
    lines.insert(5, "{not json")
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    pq.write_table(pa.table({"text": [r["text"] for r in rows]}), tmp_path / "b.parquet",
                   row_group_size=8)
    out = tmp_path / "out"
    summary = run_batch(BatchOptions(model=str(trained_tiny), load=TORCH, input=tmp_path,
                                     output=out, shard_rows=9, progress=False))
    assert summary["input_rows"] == 61 and summary["scored_rows"] == 60
    assert summary["error_rows"] == 1
    assert [r["text"] for r in read_output(out)] == [r["text"] for r in rows] * 2


def test_a_crashed_run_resumes_without_losing_or_repeating_rows(trained_tiny, tmp_path,
                                                               monkeypatch):
    import polarity.batch.passes as batch

    write_csv(tmp_path / "in.csv", 100, bad=False)
    options = BatchOptions(model=str(trained_tiny), load=TORCH, input=tmp_path / "in.csv",
                           output=tmp_path / "out", shard_rows=10, progress=False)
    real = batch.score_shard

    def crash_on_shard_4(predictor, shard, *args, **kwargs):
        if shard.index == 4:
            raise KeyboardInterrupt  # as if killed mid-run
        return real(predictor, shard, *args, **kwargs)

    monkeypatch.setattr(batch, "score_shard", crash_on_shard_4)
    with pytest.raises(KeyboardInterrupt):
        run_batch(options)
    done = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("part-*.parquet")}
    assert len(done) == 4
    monkeypatch.setattr(batch, "score_shard", real)
    summary = run_batch(options)
    assert summary["shards_scored_this_run"] == 6 and summary["scored_rows"] == 100
    assert [r["row_id"] for r in read_output(tmp_path / "out")] == list(range(100))
    assert all((tmp_path / "out" / name).stat().st_mtime_ns == t for name, t in done.items())


def test_sigkill_then_rerun(trained_tiny, tmp_path):
    write_csv(tmp_path / "in.csv", 3000, bad=False)
    cmd = [sys.executable, "-m", "polarity", "batch", "--model", str(trained_tiny), "--input",
           str(tmp_path / "in.csv"), "--output", str(tmp_path / "out"), "--shard-rows", "100",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list((tmp_path / "out").glob("part-*.parquet"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) < 30
    subprocess.run(cmd, check=True, capture_output=True)
    assert [r["row_id"] for r in read_output(tmp_path / "out")] == list(range(3000))


def test_rerun_with_other_settings_is_refused(trained_tiny, tmp_path):
    write_csv(tmp_path / "in.csv", 20, bad=False)
    options = BatchOptions(model=str(trained_tiny), load=TORCH, input=tmp_path / "in.csv",
                           output=tmp_path / "out", shard_rows=10, progress=False)
    run_batch(options)
    options.shard_rows = 5
    with pytest.raises(InputError, match="shard_rows"):
        run_batch(options)


def test_ray_engine_matches_local_row_for_row_and_resumes(trained_tiny, tmp_path):
    pytest.importorskip("ray")
    write_csv(tmp_path / "in.csv", 2000, bad=False)
    local = tmp_path / "local"
    run_batch(BatchOptions(model=str(trained_tiny), load=TORCH, input=tmp_path / "in.csv",
                           output=local, shard_rows=250, progress=False))
    # A Ray run that finds two parts already written (a crashed earlier run) and does the rest.
    ray_out = tmp_path / "ray"
    ray_out.mkdir()
    for name in ("_batch.json", "part-00000.parquet", "part-00003.parquet"):
        (ray_out / name).write_bytes((local / name).read_bytes())
    summary = run_batch(BatchOptions(model=str(trained_tiny), load=TORCH, input=tmp_path / "in.csv",
                                     output=ray_out, shard_rows=250, engine="ray",
                                     num_actors=2, progress=False))
    assert summary["shards_scored_this_run"] == 6 and summary["scored_rows"] == 2000
    a, b = read_output(local), read_output(ray_out)
    assert [r["row_id"] for r in b] == list(range(2000))
    assert [r["predicted_sentiment"] for r in a] == [r["predicted_sentiment"] for r in b]
    assert [r["confidence"] for r in a] == pytest.approx([r["confidence"] for r in b], abs=1e-6)


def test_a_cascade_runs_in_two_passes_and_resumes_in_either(trained_tiny, tiny_qwen, tmp_path,
                                                           monkeypatch):
    import numpy as np

    import polarity.batch.passes as passes
    from polarity.modelcard import ModelCard

    texts = write_csv(tmp_path / "in.csv", 60)
    fast = load_classifier(trained_tiny, runtime="torch")
    p = np.asarray(fast.positive_probabilities(texts))
    threshold = float(np.median(np.maximum(p, 1 - p)))
    cascade = tmp_path / "cascade"
    ModelCard(name="c", backend="cascade", extra={"stages": [str(trained_tiny), str(tiny_qwen)],
                                                  "threshold": threshold}).save(cascade)
    options = BatchOptions(model=str(cascade), load=TORCH, input=tmp_path / "in.csv",
                           output=tmp_path / "out", shard_rows=20, progress=False)
    real = passes.escalate_part

    def crash_on_second_part(predictor, name, *args, **kwargs):
        if name == "part-00001":
            raise KeyboardInterrupt  # killed in the second pass
        return real(predictor, name, *args, **kwargs)

    monkeypatch.setattr(passes, "escalate_part", crash_on_second_part)
    with pytest.raises(KeyboardInterrupt):
        run_batch(options)
    assert len(list((tmp_path / "out" / "_fast").glob("part-*.parquet"))) == 4  # pass 1 done
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) == 1
    monkeypatch.setattr(passes, "escalate_part", real)
    summary = run_batch(options)
    assert summary["scored_rows"] == 60 and summary["error_rows"] == 2
    rows = read_output(tmp_path / "out")
    assert [r["row_id"] for r in rows] == list(range(60))
    expected = load_classifier(cascade, runtime="torch").predict(texts)
    assert [r["tier"] for r in rows] == [e.tier for e in expected]
    assert {r["tier"] for r in rows} == {"fast", "accurate"}
    assert [r["escalation"] for r in rows] == [e.escalation for e in expected]
    assert [r["predicted_sentiment"] for r in rows] == [e.label for e in expected]
    errors = (tmp_path / "out" / "_errors.jsonl").read_text().splitlines()
    assert len(errors) == 2  # each bad row reported once, not once per pass
