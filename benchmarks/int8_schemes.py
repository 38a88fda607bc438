"""fp32, dynamic int8 (what `export --onnx` did before) and static int8 (what it does now) of
one encoder model, side by side in one run: accuracy, labels that change between batch
sizes 1 and 32, and texts/s at batch 1 and 32, on this machine's CPU.

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


def at_batches(score: Callable[[list[str], int], Sequence[float]], texts: list[str]) -> dict:
    """``score(texts, batch_size)`` at batch 1 and 32, after a warm-up: the scores under the
    batch size, and texts/s under ``tps1`` and ``tps32``."""
    score(texts[:64], 32)
    out = {}
    for batch in (1, 32):
        started = time.perf_counter()
        out[batch] = np.asarray(score(texts, batch))
        out[f"tps{batch}"] = len(texts) / (time.perf_counter() - started)
    return out


def measure(folder: Path, file: str, texts: list[str], gold: np.ndarray) -> dict:
    from polarity.backends.onnx import OnnxBackend
    from polarity.classifier import Classifier
    from polarity.modelcard import read_card

    card = read_card(folder)
    card.extra["file"] = file
    model = Classifier(OnnxBackend(folder, card), card.temperature)
    out = at_batches(model.positive_probabilities, texts)
    return {"accuracy_b1": float(((out[1] >= 0.5) == gold).mean()),
            "accuracy_b32": float(((out[32] >= 0.5) == gold).mean()),
            "labels_changed_b1_vs_b32": int(((out[1] >= 0.5) != (out[32] >= 0.5)).sum()),
            "max_probability_change": float(np.abs(out[1] - out[32]).max()),
            "texts_per_s_b1": round(out["tps1"], 1), "texts_per_s_b32": round(out["tps32"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--test-file", default=DEV)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from polarity.evaluate.data import load_test_set
    from polarity.evaluate.setup import cpu
    from polarity.export import export_onnx
    from polarity.predictor import resolve_model

    data = load_test_set(args.test_file)
    gold = np.asarray([g == "POSITIVE" for g in data.labels])
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_onnx(resolve_model(args.model), Path(tmp) / "onnx", "int8")
        logging.getLogger().setLevel(logging.ERROR)
        quantize_dynamic(str(folder / "model.onnx"), str(folder / "dynamic.onnx"),
                         weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        rows = {name: measure(folder, file, data.texts, gold) for name, file in
                (("fp32", "model.onnx"), ("dynamic int8 (before)", "dynamic.onnx"),
                 ("static int8 (now)", "model.int8.onnx"))}
    machine = cpu()
    print(f"{args.model} on {data.name} ({len(data.texts)} texts); CPU {machine['name']}, "
          f"{machine['cores']} cores, {', '.join(machine['extensions']) or 'no AVX2'}")
    print("| scheme | accuracy b1 | accuracy b32 | labels changed b1 vs b32 | max |dp| | "
          "texts/s b1 | texts/s b32 |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['accuracy_b1']:.4f} | {r['accuracy_b32']:.4f} | "
              f"{r['labels_changed_b1_vs_b32']} | {r['max_probability_change']:.1e} | "
              f"{r['texts_per_s_b1']} | {r['texts_per_s_b32']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
