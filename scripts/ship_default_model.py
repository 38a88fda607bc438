"""Copy a trained encoder model into the package as the shipped default, recording its
SST-2 dev accuracy in the metadata, and measure its int8 calibration ranges on its training
texts (``calibration.json``, or one ``calibration-stage-I.json`` per stage of a model with
early exits: numbers, not texts, so the package carries no training data and every later
ONNX export quantises with the same scales).

    python scripts/ship_default_model.py runs/student reports/sst2-dev/metrics.json \
        [--keep-previous minilm-v1]

``--keep-previous NAME`` first moves the model shipped so far to ``resources/models/NAME``,
so that ``load_classifier("NAME")`` still loads it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from polarity.backends.encoder import ADAPTER_DIR, ENCODER_FILE, HEAD_FILE
from polarity.backends.exits import EXITS_FILE
from polarity.backends.long_texts import LONG_TEXTS_FILE
from polarity.export import export_onnx
from polarity.modelcard import read_card
from polarity.predictor import default_model_path, packaged_models_path

#: What a model folder holds that the package needs (not checkpoints, logs or resume state).
MODEL_FILES = (ADAPTER_DIR, ENCODER_FILE, HEAD_FILE, EXITS_FILE, LONG_TEXTS_FILE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("sst2_metrics", type=Path, help="metrics.json of polarity evaluate")
    parser.add_argument("--keep-previous", metavar="NAME")
    args = parser.parse_args()
    src, dst = args.model, default_model_path()
    card = read_card(src)
    metrics = json.loads(args.sst2_metrics.read_text())
    card.metrics["sst2_dev"] = {"accuracy": metrics["accuracy"],
                                "macro_f1": metrics["macro"]["f1"],
                                "ece": metrics["calibration"]["ece"], "n": metrics["n"],
                                "setup": metrics.get("setup"),
                                "file": "GLUE SST-2 dev (stanfordnlp/sst2 validation, 872)"}
    if args.keep_previous:
        previous = packaged_models_path() / args.keep_previous
        shutil.rmtree(previous, ignore_errors=True)
        previous.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(dst, previous)
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for name in MODEL_FILES:
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name)
        elif (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    card.save(dst)
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_onnx(dst, Path(tmp) / "onnx", "int8")
        for ranges in exported.glob("calibration*.json"):
            shutil.copyfile(ranges, dst / ranges.name)
    print(f"shipped {src} -> {dst} (SST-2 dev accuracy {metrics['accuracy']:.4f})")


if __name__ == "__main__":
    main()
