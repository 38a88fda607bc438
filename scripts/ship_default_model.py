"""Copy a trained encoder model into the package as the shipped default, recording its
SST-2 dev accuracy in the metadata, and measure its int8 calibration ranges on its training
texts (``calibration.json``: numbers, not texts, so the package carries no training data and
every later ONNX export quantises with the same scales).

    python scripts/ship_default_model.py runs/default reports/sst2-dev/metrics.json
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from polarity.export import export_onnx
from polarity.modelcard import read_card
from polarity.predictor import default_model_path
from polarity.quantize import CALIBRATION_FILE


def main(model: str, sst2_metrics: str) -> None:
    src, dst = Path(model), default_model_path()
    card = read_card(src)
    metrics = json.loads(Path(sst2_metrics).read_text())
    card.metrics["sst2_dev"] = {"accuracy": metrics["accuracy"],
                                "macro_f1": metrics["macro"]["f1"],
                                "ece": metrics["calibration"]["ece"], "n": metrics["n"],
                                "file": "sst2/dev.tsv (GLUE SST-2 dev, 872 sentences)"}
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src / "adapter", dst / "adapter")
    shutil.copy2(src / "head.safetensors", dst / "head.safetensors")
    card.save(dst)
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(dst, Path(tmp) / "onnx", "int8")
        shutil.copyfile(Path(tmp) / "onnx" / CALIBRATION_FILE, dst / CALIBRATION_FILE)
    print(f"shipped {src} -> {dst} (SST-2 dev accuracy {metrics['accuracy']:.4f})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
