"""scripts/gpu_accurate.py --smoke: the one-command GPU pipeline, run on the CPU with a tiny
Qwen2 GGUF and tiny data, end to end, in the default test run."""

import json

import pyarrow.parquet as pq
from helpers import ROOT, load_script, synthetic_rows, write_jsonl, write_tiny_gguf

from polarity.data.teacher import teacher_provenance


def test_the_gpu_pipeline_runs_end_to_end_on_the_cpu(tiny_qwen, tmp_path):
    gguf = write_tiny_gguf(tiny_qwen, tmp_path / "tiny.gguf")
    data = tmp_path / "data"
    data.mkdir()
    for split, seed in (("train", 1), ("val", 2), ("test", 3)):
        write_jsonl(data / f"{split}.jsonl", synthetic_rows(24, seed=seed))
    dev = write_jsonl(tmp_path / "dev.jsonl", synthetic_rows(16, seed=4))
    corpus = write_jsonl(tmp_path / "augmented.jsonl",
                         [{"text": r["text"] + " again"} for r in synthetic_rows(8, seed=5)])
    out = tmp_path / "out"
    args = [str(gguf), str(out), "--data", str(data), "--corpus", str(corpus), "--dev",
            str(dev), "--config", str(ROOT / "configs" / "qwen_gpu.yaml"), "--smoke"]
    results = load_script("gpu_accurate").main(args)
    assert set(results["seconds"]) == {"convert", "train", "evaluate", "adapter_bf16",
                                       "score_corpus"}
    assert results["sst2_dev"]["n"] == 16 and results["curated_100"]["n"] == 100
    assert json.loads((out / "results.json").read_text())["teacher"]["rows"] == 64
    table = pq.read_table(out / "teacher.parquet")
    assert table.num_rows == 64 and 0 <= min(table.column("p_positive").to_pylist())
    assert teacher_provenance(out / "teacher.parquet")["backend"] == "causal_lm"
    card = json.loads((out / "accurate" / "polarity.json").read_text())
    assert card["lora"]["r"] == 16 and card["training"]["skipped_steps"] == 0
    assert not (out / "accurate" / "checkpoints").exists()
    # every step's output is there: nothing is redone
    again = load_script("gpu_accurate").main(args)
    assert again["seconds"]["train"] < results["seconds"]["train"]
