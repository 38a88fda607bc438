"""Models between two encoder models of one base, in weight space (WiSE-FT, Wortsman et al.
2022): each model's LoRA update and head are ``(1 - w) * first + w * second``.

    python scripts/interpolate_models.py src/polarity/resources/default_model \
        runs/student-accurate-v3 --weights 0.25 0.5 0.75 --output runs/between

writes ``runs/between/w0.25`` and so on, each a model folder that ``polarity evaluate`` and
``polarity calibrate`` load. The two adapters are joined rank by rank (A stacked, B scaled
by each side's weight), so the update is exactly the weighted sum of the two updates; the
scale ``alpha / r`` is kept. Both models must share the base, the adapter's target modules
and its scale; the second model's card is the template (its temperature is left for
``polarity calibrate``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from polarity.modelcard import read_card
from polarity.registry import ADAPTER_DIR, ADAPTER_FILES, HEAD_FILE

CONFIG_FILE, WEIGHTS_FILE = ADAPTER_FILES


def joined_adapter(first: Path, second: Path, w: float) -> tuple[dict, dict]:
    """The adapter config and tensors whose update is (1 - w) * first's + w * second's."""
    configs = [json.loads((m / CONFIG_FILE).read_text()) for m in (first, second)]
    same = ("base_model_name_or_path", "use_rslora")
    if any(configs[0].get(k) != configs[1].get(k) for k in same) or sorted(
            configs[0]["target_modules"]) != sorted(configs[1]["target_modules"]) or (
            configs[0]["lora_alpha"] / configs[0]["r"]
            != configs[1]["lora_alpha"] / configs[1]["r"]):
        raise SystemExit("the two adapters differ in base, target modules or scale")
    a, b = (load_file(m / WEIGHTS_FILE) for m in (first, second))
    if set(a) != set(b):
        raise SystemExit("the two adapters hold different tensors")
    tensors = {}
    for name in a:
        if ".lora_A." in name:  # [r, in]: ranks stacked
            tensors[name] = torch.cat([a[name], b[name]], dim=0)
        elif ".lora_B." in name:  # [out, r]: each side weighted
            tensors[name] = torch.cat([(1 - w) * a[name], w * b[name]], dim=1)
        else:
            raise SystemExit(f"{name}: only LoRA A and B tensors can be joined")
    config = dict(configs[1], r=configs[0]["r"] + configs[1]["r"],
                  lora_alpha=configs[0]["lora_alpha"] + configs[1]["lora_alpha"])
    return config, {k: v.contiguous() for k, v in tensors.items()}


def between(first: Path, second: Path, w: float, out: Path) -> Path:
    config, tensors = joined_adapter(first, second, w)
    heads = [load_file(m / HEAD_FILE) for m in (first, second)]
    card = read_card(second)
    if read_card(first).base_model != card.base_model:
        raise SystemExit("the two models have different bases")
    if out.exists():
        shutil.rmtree(out)
    (out / ADAPTER_DIR).mkdir(parents=True)
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    save_file(tensors, out / WEIGHTS_FILE)
    save_file({k: ((1 - w) * heads[0][k] + w * heads[1][k]).contiguous() for k in heads[1]},
              out / HEAD_FILE)
    lora = dict(card.lora, r=config["r"], alpha=config["lora_alpha"])
    # the second's training record stays: its train_file gives the int8 export its ranges
    training = dict(card.training, between={"command": "scripts/interpolate_models.py",
                                            "first": str(first), "second": str(second),
                                            "weight": w})
    card = card.model_copy(update={"lora": lora, "training": training, "metrics": {},
                                   "temperature": 1.0})
    card.save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--weights", type=float, nargs="+", required=True,
                        help="the second model's share of each model written")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    for w in args.weights:
        print(between(args.first, args.second, w, args.output / f"w{w:g}"))


if __name__ == "__main__":
    main()
