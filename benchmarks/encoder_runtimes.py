"""The default's int8 graph on the runtimes that could run it, side by side in one run, on
the same texts and windows: accuracy on SST-2 dev, labels that differ from the shipped
runtime's, the largest change of a text's log-odds between batch 1 and 32, and texts/s at
batch 1 and 32, on this machine's CPU.

Rows: the shipped ONNX Runtime backend (a batch cut into one single-threaded call per core,
run side by side); ONNX Runtime as one call using every core (how it ran before); OpenVINO
reading the same ONNX file, with its CPU plugin's f32 and bf16 inference precision (bf16 is
its default on CPUs with AMX or AVX512_BF16), when ``openvino`` is installed
(``pip install openvino``). CTranslate2 is not a row: it has no classification head for an
encoder and no static int8 with stored activation ranges, so it cannot give these answers.

    .venv/bin/python benchmarks/encoder_runtimes.py [--model default] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from int8_schemes import at_batches

DEV = ("hf:stanfordnlp/sst2?split=validation&text_column=sentence"
       "&local_copy=tsv:../shared/data/sst2/dev.tsv")


def runners(backend, threads: int) -> dict[str, Callable]:
    import onnxruntime as ort

    path = str(Path(backend.info.path) / backend.card.extra["file"])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    whole = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    out = {f"onnxruntime, {threads} shards of 1 thread (shipped)": backend._logits,
           f"onnxruntime, one call on {threads} threads": lambda ids, mask: whole.run(
               ["logits"], {"input_ids": ids, "attention_mask": mask})[0]}
    try:
        import openvino as ov
    except ImportError:
        print("openvino is not installed (pip install openvino): its rows are left out")
        return out
    core = ov.Core()
    model = core.read_model(path)
    for precision in ("f32", "bf16"):
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                     "INFERENCE_NUM_THREADS": threads,
                                                     "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        out[f"openvino {ov.__version__.split('-')[0]}, {precision}"] = (
            lambda r: lambda ids, mask: r.infer({"input_ids": ids, "attention_mask": mask}
                                                )[0].copy())(request)
    return out


def measure(run: Callable, tokenizer, card, texts: list[str]) -> dict:
    from polarity.backends.windows import window_log_odds

    return at_batches(lambda batch_texts, batch: window_log_odds(
        tokenizer, batch_texts, card.max_length, batch, run)[0], texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--test-file", default=DEV)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from polarity.evaluate.data import load_test_set
    from polarity.evaluate.setup import cpu
    from polarity.predictor import load_classifier
    from polarity.preprocess import apply_all

    model = load_classifier(args.model, runtime="onnx")
    backend, card = model.backend, model.card
    data = load_test_set(args.test_file)
    texts = apply_all(data.texts, card.preprocessing)
    gold = np.asarray([label == "POSITIVE" for label in data.labels])
    threads = os.cpu_count() or 1
    found = {name: measure(run, backend.tokenizer, card, texts)
             for name, run in runners(backend, threads).items()}
    shipped = next(iter(found.values()))[32]
    machine = cpu()
    print(f"\nmachine: {machine['name']}, {threads} cores ({' '.join(machine['extensions'])}); "
          f"{card.name} {card.version}, {len(texts)} texts\n")
    print("| runtime | accuracy | labels differing from shipped | max \\|dz\\| b1 vs b32 "
          "| texts/s b1 | texts/s b32 | b32 / shipped |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name, r in found.items():
        row = {"runtime": name, "accuracy": float(((r[32] > 0) == gold).mean()),
               "differ": int(((r[32] > 0) != (shipped > 0)).sum()),
               "batch_drift": float(np.abs(r[1] - r[32]).max()),
               "tps1": r["tps1"], "tps32": r["tps32"]}
        rows.append(row)
        print(f"| {name} | {row['accuracy']:.4f} | {row['differ']} | {row['batch_drift']:.2g} "
              f"| {row['tps1']:.0f} | {row['tps32']:.0f} "
              f"| {row['tps32'] / rows[0]['tps32']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
