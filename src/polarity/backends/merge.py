"""A LoRA adapter merged into its base one tensor at a time, straight from the safetensors
files, into a float16 Hugging Face folder: what the CTranslate2 converter reads.

Loading the base model and merging with peft peaked at 7.2 GB for the 1.5B accurate tier
(the base and transient copies held at once); this reads one tensor, adds its LoRA update in
float32, keeps the sum in float16 and writes shards of ``SHARD_BYTES``, so that it holds one
shard at a time (docs/qwen.md, "First use").
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

SHARD_BYTES = 512 * 2**20
#: peft options that change what a merge computes; an adapter using one is refused rather than
#: merged wrongly.
UNSUPPORTED = ("use_dora", "use_rslora", "fan_in_fan_out", "modules_to_save", "rank_pattern",
               "alpha_pattern", "layer_replication", "trainable_token_indices")
_LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")


class UnsupportedAdapter(ValueError):
    pass


def merge_adapter(base: Path, adapter: Path | None, out: Path, dtype: str = "float16") -> Path:
    """Write ``base`` with the LoRA ``adapter`` (if any) merged as a ``dtype`` safetensors
    folder (config and tokenizer files copied) into ``out``; returns ``out``."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    updates, scaling = _lora_pairs(adapter) if adapter is not None else ({}, 1.0)
    target = getattr(torch, dtype)
    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, str] = {}
    shard: dict[str, torch.Tensor] = {}
    size = 0

    def flush() -> None:
        nonlocal shard, size
        name = f"model-{len(set(index.values())) + 1:05d}.safetensors"
        save_file(shard, str(out / name), metadata={"format": "pt"})
        index.update(dict.fromkeys(shard, name))
        shard, size = {}, 0

    merged = 0
    for file in sorted(base.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                tensor = f.get_tensor(key)
                pair = updates.get(key.removesuffix(".weight"))
                if pair is not None:
                    a, b = (t.float() for t in pair)
                    tensor = tensor.float() + (b @ a) * scaling
                    merged += 1
                shard[key] = tensor.to(target).contiguous()
                size += shard[key].nbytes
                if size >= SHARD_BYTES:
                    flush()
    if shard:
        flush()
    if merged != len(updates):
        raise UnsupportedAdapter(f"{adapter}: {len(updates) - merged} of {len(updates)} LoRA "
                                 f"weights match no tensor of the base in {base}")
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": index}, indent=1))
    for file in base.iterdir():
        if file.is_file() and not file.name.endswith((".safetensors", ".index.json", ".bin")):
            shutil.copy2(file, out / file.name)
    _set_dtype(out / "config.json", dtype)
    return out


def merged_cache_folder(kind: str, folder: Path | None, card, salt: str) -> tuple[Path, Path]:
    """Where a runtime's conversion of a causal LM with its adapter merged is cached, and the
    base it is made from: one folder per runtime ``kind`` and per weights (the base's files,
    the adapter's bytes, polarity's version and ``salt``), so that a new temperature or new
    metrics on the card keep it and a new adapter does not."""
    import hashlib

    from polarity.backends.base_models import resolve_base
    from polarity.cache import cache_root
    from polarity.folders import slug
    from polarity.version import __version__

    base = Path(resolve_base(card.base_model, folder))
    if base.suffix == ".gguf":
        from polarity.registry import RuntimeUnavailable

        # The converters read a Hugging Face folder; a GGUF file runs on llama.cpp as is.
        raise RuntimeUnavailable(f"the {kind} runtime needs a Hugging Face folder as the "
                                 f"base, not {base.name}")
    digest = hashlib.sha256(f"{__version__}\0{salt}".encode())
    for path in sorted(base.glob("*")) if base.is_dir() else [base]:
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for path in sorted((folder / "adapter").glob("*")) if folder is not None else []:
        if path.is_file():
            digest.update(path.read_bytes())
    return cache_root() / kind / f"{slug(card.name)[:64]}-{digest.hexdigest()[:16]}", base


def _lora_pairs(adapter: Path) -> tuple[dict, float]:
    """{base module name: (A, B)} and the scaling of a plain LoRA adapter folder."""
    from safetensors.torch import load_file

    config = json.loads((adapter / "adapter_config.json").read_text())
    used = [option for option in UNSUPPORTED if config.get(option)]
    if config.get("peft_type", "LORA") != "LORA" or used:
        raise UnsupportedAdapter(
            f"{adapter}: only plain LoRA adapters are merged for CTranslate2 (this one uses "
            f"{', '.join(used) or config.get('peft_type')}); run it with --runtime torch")
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    pairs: dict[str, dict[str, object]] = {}
    for key, tensor in tensors.items():
        found = _LORA_KEY.match(key)
        if found is None:
            raise UnsupportedAdapter(f"{adapter}: unexpected tensor {key} (not a LoRA A/B "
                                     "weight); run it with --runtime torch")
        pairs.setdefault(found["module"], {})[found["ab"]] = tensor
    return {module: (ab["A"], ab["B"]) for module, ab in pairs.items()}, \
        config["lora_alpha"] / config["r"]


def _set_dtype(config: Path, dtype: str) -> None:
    if config.is_file():
        data = json.loads(config.read_text())
        data["torch_dtype"] = data["dtype"] = dtype
        config.write_text(json.dumps(data, indent=1))
