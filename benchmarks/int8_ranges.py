"""How much an encoder model's int8 accuracy owes to its calibration ranges: each model as
stored (its ``calibration.json``, or ranges measured on its training file), then quantised
with ranges measured on other random samples of training texts, on the same test sets.

    .venv/bin/python benchmarks/int8_ranges.py default runs/between/w0.4 \
        --train-file data/default/train.jsonl --samples 4 \
        --test-files data/default/val.jsonl "$SST2_DEV"

Sample ``s`` is ``--texts`` texts of ``--train-file`` in a seeded shuffle (seed ``s``). Every
variant is a copy of the model folder with that sample's ``calibration.json`` beside the
weights, loaded as users load a model (ONNX Runtime static int8). Prints one table of
accuracies: a difference between two models smaller than the spread of one model's rows is
int8 rounding, not the weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np


def sample_file(train_file: Path, seed: int, n: int, folder: Path) -> Path:
    """``n`` texts of ``train_file`` as the export samples its calibration texts, but seeded
    with ``seed`` (the export's own sample is seed 0)."""
    from polarity.quantize import sample_texts

    texts = [json.loads(line)["text"] for line in train_file.read_text().splitlines()
             if line.strip()]
    path = folder / f"sample-{seed}.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in sample_texts(texts, n, seed)))
    return path


def with_ranges(model: str, sample: Path | None, folder: Path) -> str:
    """A copy of ``model`` whose ``calibration.json`` was measured on ``sample``."""
    from polarity.export import export_onnx
    from polarity.predictor import resolve_model
    from polarity.quantize import CALIBRATION_FILE

    if sample is None:
        return model
    copy = folder / f"{Path(str(resolve_model(model))).name}-{sample.stem}"
    shutil.copytree(resolve_model(model), copy)
    for old in copy.glob("calibration*.json"):
        old.unlink()
    exported = export_onnx(copy, folder / f"{copy.name}-onnx", "int8", calibration_file=sample)
    for ranges in exported.glob("calibration*.json"):
        shutil.copy(ranges, copy / ranges.name)
    assert (copy / CALIBRATION_FILE).is_file() or any(copy.glob("calibration-stage-*.json"))
    return str(copy)


def accuracy(model: str, test) -> float:
    from polarity import load_classifier

    p = np.asarray(load_classifier(model).positive_probabilities(test.texts, 32))
    return float(((p >= 0.5) == (np.asarray(test.labels) == "POSITIVE")).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--train-file", type=Path, default=Path("data/default/train.jsonl"))
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--test-files", nargs="+", required=True)
    args = parser.parse_args()
    from polarity.evaluate.data import load_test_set
    from polarity.evaluate.setup import cpu

    tests = {f: load_test_set(f) for f in args.test_files}
    names = [Path(f.split("?")[0].split(":")[-1]).name for f in args.test_files]
    print(f"CPU {cpu()['name']}; ONNX Runtime static int8")
    print("| ranges from | " + " | ".join(f"{m}: {n}" for m in args.models for n in names)
          + " |")
    print("|---|" + "---|" * (len(args.models) * len(names)))
    with tempfile.TemporaryDirectory() as tmp:
        samples = [None] + [sample_file(args.train_file, s, args.texts, Path(tmp))
                            for s in range(1, args.samples + 1)]
        for sample in samples:
            cells = []
            for model in args.models:
                variant = with_ranges(model, sample, Path(tmp))
                cells += [f"{accuracy(variant, t):.4f}" for t in tests.values()]
            label = "as stored" if sample is None else f"sample {sample.stem.split('-')[1]}"
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
