"""fp32, dynamic int8 (what `export --onnx` did first), static int8 with the FFN
down-projections in float (what it does by default) and static int8 with the
down-projections in int8 with a scale per token (`--int8-down-projections rows`) of one
encoder model, side by side in one run:
accuracy, labels that change between batch sizes 1 and 32, and texts/s at batch 1 and 32, on
this machine's CPU.

    python benchmarks/int8_schemes.py [--model default] [--test-file SPEC] [--json FILE]

The default test file is SST-2 dev from the hub, or its local copy under ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

DEV = ("hf:stanfordnlp/sst2?split=validation&text_column=sentence"
       "&local_copy=tsv:../shared/data/sst2/dev.tsv")


def load(folder: Path, file: str):
    from polarity.backends.onnx import OnnxBackend
    from polarity.classifier import Classifier
    from polarity.modelcard import read_card

    card = read_card(folder)
    card.extra["file"] = file
    return Classifier(OnnxBackend(folder, card), card.temperature).positive_probabilities


def timed(score: Callable[[list[str], int], Sequence[float]], texts: list[str],
          batch: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = np.asarray(score(texts, batch))
    return out, len(texts) / (time.perf_counter() - started)


def measure(models: dict, texts: list[str], gold: np.ndarray, rounds: int) -> dict:
    """Accuracy at batch 1 and 32, labels that change between them, labels and mean |dp|
    apart from the first scheme's, texts/s at batch 1 and (the median of ``rounds`` passes,
    the schemes taking turns) at batch 32."""
    rows, reference = {}, None
    for name, score in models.items():
        score(texts[:64], 32)  # warm-up
        (b1, tps1), (b32, _) = timed(score, texts, 1), timed(score, texts, 32)
        rows[name] = {"accuracy_b1": float(((b1 >= 0.5) == gold).mean()),
                      "accuracy_b32": float(((b32 >= 0.5) == gold).mean()),
                      "labels_changed_b1_vs_b32": int(((b1 >= 0.5) != (b32 >= 0.5)).sum()),
                      "max_probability_change": float(np.abs(b1 - b32).max()),
                      "texts_per_s_b1": round(tps1, 1), "b32": []}
        reference = b32 if reference is None else reference  # the first scheme's (fp32)
        rows[name]["labels_apart_from_first"] = int(((b32 >= 0.5) != (reference >= 0.5)).sum())
        rows[name]["mean_dp_from_first"] = float(np.abs(b32 - reference).mean())
    for _ in range(rounds):
        for name, score in models.items():
            rows[name]["b32"].append(timed(score, texts, 32)[1])
    for row in rows.values():
        row["texts_per_s_b32"] = round(float(np.median(row.pop("b32"))), 1)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--test-file", default=DEV)
    parser.add_argument("--rounds", type=int, default=5,
                        help="passes at batch 32 per scheme, taking turns (median)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from polarity.evaluate.data import load_test_set
    from polarity.evaluate.setup import cpu
    from polarity.export import export_onnx
    from polarity.predictor import resolve_model
    from polarity.quantize import CALIBRATION_FILE, quantize_static_int8

    data = load_test_set(args.test_file)
    gold = np.asarray([g == "POSITIVE" for g in data.labels])
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_onnx(resolve_model(args.model), Path(tmp) / "onnx", "int8")
        logging.getLogger().setLevel(logging.ERROR)
        quantize_dynamic(str(folder / "model.onnx"), str(folder / "dynamic.onnx"),
                         weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        quantize_static_int8(folder / "model.onnx", folder / "rows.onnx",
                             folder / CALIBRATION_FILE, down="rows")  # the same ranges
        rows = measure({name: load(folder, file) for name, file in (
            ("fp32", "model.onnx"), ("dynamic int8 (first)", "dynamic.onnx"),
            ("static int8, down-projections float (the default)", "model.int8.onnx"),
            ("static int8, down-projections int8 a scale per token (`--int8-down-projections "
             "rows`)", "rows.onnx"))}, data.texts, gold, args.rounds)
    machine = cpu()
    print(f"{args.model} on {data.name} ({len(data.texts)} texts); CPU {machine['name']}, "
          f"{machine['cores']} cores, {', '.join(machine['extensions']) or 'no AVX2'}")
    print("| scheme | accuracy b1 | accuracy b32 | labels changed b1 vs b32 | max |dp| | "
          "labels apart from fp32 | mean |dp| from fp32 | "
          f"texts/s b1 | texts/s b32 (median of {args.rounds}) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['accuracy_b1']:.4f} | {r['accuracy_b32']:.4f} | "
              f"{r['labels_changed_b1_vs_b32']} | {r['max_probability_change']:.1e} | "
              f"{r['labels_apart_from_first']} | {r['mean_dp_from_first']:.4f} | "
              f"{r['texts_per_s_b1']} | {r['texts_per_s_b32']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
