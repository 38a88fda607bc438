"""Copy a trained causal LM adapter into the package as the accurate tier
(``load_classifier("accurate")``): the adapter in bfloat16 (half the bytes; the base it sits
on is bf16 already), the model card with the measured results, no tokenizer (the pulled base
has it) and no checkpoints.

    python scripts/ship_accurate_model.py runs/accurate \
        --metrics sst2_dev=reports/accurate-sst2/metrics.json \
        --metrics curated_100=reports/accurate-curated/metrics.json ...

Each ``--metrics NAME=FILE`` (a ``polarity evaluate`` metrics.json) is recorded in the card
under ``metrics[NAME]``: accuracy, macro F1, ECE, rows and the setup they were measured in.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from polarity.backends.causal_lm import ADAPTER_DIR
from polarity.modelcard import read_card
from polarity.predictor import packaged_models_path

NAME = "accurate"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--metrics", action="append", default=[], metavar="NAME=FILE")
    args = parser.parse_args()
    card = read_card(args.model)
    for item in args.metrics:
        name, _, file = item.partition("=")
        m = json.loads(Path(file).read_text())
        card.metrics[name] = {"accuracy": m["accuracy"], "macro_f1": m["macro"]["f1"],
                              "ece": m["calibration"]["ece"], "n": m["n"],
                              "test_file": m.get("test_file"), "setup": m.get("setup")}
    dst = packaged_models_path() / NAME
    shutil.rmtree(dst, ignore_errors=True)
    (dst / ADAPTER_DIR).mkdir(parents=True)
    src = args.model / ADAPTER_DIR
    shutil.copy2(src / "adapter_config.json", dst / ADAPTER_DIR / "adapter_config.json")
    tensors = load_file(str(src / "adapter_model.safetensors"))
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()},
              str(dst / ADAPTER_DIR / "adapter_model.safetensors"))
    card.save(dst)
    for path in dst.rglob("*"):  # readable by the service's own user in an image
        path.chmod(0o755 if path.is_dir() else 0o644)
    size = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
    print(f"shipped {args.model} -> {dst} ({size / 2**20:.1f} MB)")


if __name__ == "__main__":
    main()
