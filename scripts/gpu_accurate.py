"""The accurate tier on one GPU in one command, and the teacher probabilities it gives.

    python scripts/gpu_accurate.py MODEL.gguf OUT [--data data/default]
        [--corpus data/distill/augmented.jsonl] [--dev SPEC] [--config configs/qwen_gpu.yaml]

Steps, each skipped when its output is already in OUT (so a rerun after a stop goes on):

1. ``OUT/base``: the GGUF converted to a bf16 folder (``polarity.pull.convert_gguf``);
2. ``OUT/run``: LoRA training with ``--config`` over ``DATA/train.jsonl`` (validation
   ``DATA/val.jsonl``), NaN-guarded like every run (``max_bad_steps``);
3. accuracy on SST-2 dev (``--dev``, a test file or an ``hf:`` spec) and the curated 100;
4. ``OUT/accurate``: the adapter in bf16 with its card and tokenizer (what is shipped);
5. ``OUT/teacher.parquet``: P(POSITIVE) for the distillation corpus (the prepared train,
   val and test splits plus ``--corpus``) as a teacher file (``polarity.data.teacher``);
6. ``OUT/results.json``: accuracies, counts and the seconds of every step.

``--smoke`` runs the identical pipeline on the CPU in float32 with a few steps and a sample
of the corpus: given a tiny Qwen2 GGUF and tiny data, it checks the whole path in seconds
(tests/test_gpu_pipeline.py does exactly that in the default test run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import time
from pathlib import Path

DEFAULT_DEV = ("hf:stanfordnlp/sst2?split=validation&text_column=sentence"
               "&local_copy=tsv:../shared/data/sst2/dev.tsv")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path("data/default"))
    parser.add_argument("--corpus", type=Path, default=Path("data/distill/augmented.jsonl"))
    parser.add_argument("--dev", default=DEFAULT_DEV)
    parser.add_argument("--config", type=Path, default=Path("configs/qwen_gpu.yaml"))
    parser.add_argument("--batch-size", type=int, default=256, help="scoring batch size")
    parser.add_argument("--smoke", action="store_true",
                        help="the same pipeline on the CPU, a few steps, a corpus sample")
    args = parser.parse_args(argv)
    results: dict = {"started": datetime.datetime.now(datetime.UTC).isoformat(),
                     "seconds": {}, "smoke": args.smoke}
    args.out.mkdir(parents=True, exist_ok=True)
    base = _step(results, "convert", lambda: _convert(args.gguf, args.out / "base"))
    run = _step(results, "train", lambda: _train(args, base))
    _step(results, "evaluate", lambda: _evaluate(args, run, results))
    _step(results, "adapter_bf16", lambda: _adapter_bf16(run, args.out / "accurate"))
    _step(results, "score_corpus", lambda: _score(args, run, results))
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


def _step(results: dict, name: str, work):
    started = time.perf_counter()
    print(f"gpu_accurate: {name} ...", file=sys.stderr, flush=True)
    value = work()
    results["seconds"][name] = round(time.perf_counter() - started, 1)
    return value


def _convert(gguf: Path, folder: Path) -> Path:
    from polarity.pull import convert_gguf

    if not (folder / "config.json").is_file():
        convert_gguf(gguf, folder)
    return folder


def _train(args, base: Path) -> Path:
    from polarity.train.checkpoint import latest_checkpoint
    from polarity.train.config import load_train_config
    from polarity.train.run import train

    out = args.out / "run"
    if (out / "polarity.json").is_file():
        return out
    smoke = {"dtype": "float32", "max_steps": 4, "eval_steps": 2, "max_val_rows": 16,
             "batch_size": 4} if args.smoke else {}
    config = load_train_config(args.config, base_model=str(base), output_dir=out,
                               train_file=args.data / "train.jsonl",
                               val_file=args.data / "val.jsonl", progress=not args.smoke,
                               **smoke)
    resume = "last" if latest_checkpoint(out / "checkpoints") else None
    train(config, resume=resume, command=" ".join(["python", *sys.argv]))
    return out


def _options(args):
    from polarity.contract import LoadOptions

    return LoadOptions(device="cpu" if args.smoke else "cuda",
                       dtype="float32" if args.smoke else "bfloat16")


def _evaluate(args, run: Path, results: dict) -> None:
    from polarity.evaluate.data import load_test_set
    from polarity.predictor import load_classifier

    model = load_classifier(run, _options(args))
    for name, source in (("sst2_dev", args.dev), ("curated_100", None)):
        data = load_test_set(source)
        probs = model.positive_probabilities(data.texts, args.batch_size)
        correct = sum((p >= 0.5) == (g == "POSITIVE")
                      for p, g in zip(probs, data.labels, strict=True))
        results[name] = {"accuracy": correct / len(data.texts), "n": len(data.texts)}


def _adapter_bf16(run: Path, folder: Path) -> Path:
    """The adapter in bf16 (half the bytes; the LoRA weights trained in float32)."""
    import torch
    from safetensors.torch import load_file, save_file

    if (folder / "polarity.json").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(run, folder, ignore=shutil.ignore_patterns("checkpoints", "*.jsonl",
                                                               "resume_config.json"))
    weights = folder / "adapter" / "adapter_model.safetensors"
    save_file({k: v.to(torch.bfloat16) for k, v in load_file(str(weights)).items()},
              str(weights))
    return folder


def _score(args, run: Path, results: dict) -> None:
    from polarity.data.teacher import write_teacher_file
    from polarity.data.writers import read_rows
    from polarity.predictor import load_classifier

    target = args.out / "teacher.parquet"
    if target.is_file():
        return
    files = [args.data / f"{split}.jsonl" for split in ("train", "val", "test")]
    files += [args.corpus] if args.corpus.is_file() else []
    texts = list(dict.fromkeys(r["text"] for f in files for r in read_rows(f)
                               if isinstance(r.get("text"), str)))
    if args.smoke:
        texts = texts[:64]
    model = load_classifier(run, _options(args))
    started = time.perf_counter()
    probs = model.positive_probabilities(texts, args.batch_size)
    results["texts_per_second"] = round(len(texts) / (time.perf_counter() - started), 1)
    card = json.loads((run / "polarity.json").read_text())
    provenance = {"model": card["name"], "model_base": card["base_model"], "backend":
                  "causal_lm", "validation": card["metrics"].get("validation"),
                  "sst2_dev": results.get("sst2_dev"), "data": [str(f) for f in files],
                  "command": " ".join(["python", *sys.argv]),
                  "date": datetime.datetime.now(datetime.UTC).isoformat()}
    results["teacher"] = write_teacher_file(texts, probs, target, provenance)


if __name__ == "__main__":
    main()
