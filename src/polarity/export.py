"""``polarity export``: turn a trained adapter folder into a standalone model folder.

``merge_causal_lm`` folds a Qwen2-tier LoRA adapter into its base and writes full weights, the
tokenizer and the metadata: the result loads with nothing else, in any tool that reads a
Hugging Face folder (vLLM, TGI, llama.cpp's converter). ``export_onnx`` writes the encoder
tier as one ONNX graph (optionally int8) for ONNX Runtime.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from polarity.errors import InputError
from polarity.folders import replacing_folder
from polarity.modelcard import read_card


def merge_causal_lm(model_dir: str | Path, output_dir: str | Path, dtype: str | None = None
                    ) -> Path:
    """Base + adapter -> merged weights in ``dtype`` (default: the dtype it was trained in)."""
    from polarity.backends.causal_lm import (
        ADAPTER_DIR,
        DTYPES,
        load_causal_lm_model,
        load_lm_tokenizer,
    )

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    card = read_card(model_dir)
    if card.backend != "causal_lm":
        raise InputError(f"{model_dir} is a {card.backend!r} model; --merge is for causal_lm "
                         "adapters (the encoder tier merges its adapter when it loads)")
    if not (model_dir / ADAPTER_DIR).is_dir():
        raise InputError(f"{model_dir} has no {ADAPTER_DIR}/ to merge (already merged?)")
    check_output(model_dir, output_dir)
    dtype = dtype or card.extra.get("dtype", "bfloat16")
    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    model = load_causal_lm_model(model_dir, card, dtype)
    with replacing_folder(output_dir) as partial:
        model.save_pretrained(str(partial))
        load_lm_tokenizer(model_dir).save_pretrained(str(partial))
        merged = card.model_copy(deep=True)
        merged.extra = {**card.extra, "dtype": dtype, "merged_from": str(model_dir.resolve())}
        merged.save(partial)
    return output_dir


ONNX_FILES = {None: "model.onnx", "int8": "model.int8.onnx"}


def export_onnx(model_dir: str | Path, output_dir: str | Path, quantize: str | None = "int8",
                opset: int = 17) -> Path:
    """Encoder (adapter merged) + pooling + head as one ONNX graph, with the tokenizer and
    metadata; ``quantize="int8"`` adds dynamic int8 weights (the file the card points to)."""
    import torch

    from polarity.backends.base_models import resolve_base
    from polarity.backends.encoder import load_encoder_model, load_tokenizer

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    card = read_card(model_dir)
    if card.backend != "encoder":
        raise InputError(f"{model_dir} is a {card.backend!r} model; --onnx exports the encoder "
                         "tier")
    if quantize not in ONNX_FILES:
        raise InputError(f"--quantize {quantize!r}; choose int8 or leave it out")
    check_output(model_dir, output_dir)
    model = load_encoder_model(model_dir, card)
    tokenizer = load_tokenizer(resolve_base(card.base_model, model_dir))
    sample = tokenizer(["an example to trace", "short"], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    with replacing_folder(output_dir) as partial:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes we do not vary
            torch.onnx.export(
                model, (sample["input_ids"], sample["attention_mask"]),
                str(partial / ONNX_FILES[None]), input_names=["input_ids", "attention_mask"],
                output_names=["logits"], opset_version=opset, dynamo=False,
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}})
        if quantize == "int8":
            _quantize_int8(partial / ONNX_FILES[None], partial / ONNX_FILES["int8"])
        tokenizer.save_pretrained(str(partial))
        exported = card.model_copy(deep=True)
        exported.backend = "onnx"
        exported.extra = {**card.extra, "file": ONNX_FILES[quantize], "quantize": quantize,
                          "exported_from": str(model_dir.resolve()), "opset": opset}
        exported.save(partial)
    return output_dir


def check_output(model_dir: Path, output_dir: Path) -> None:
    """The export replaces ``output_dir`` whole, so it must not be, hold or sit inside the
    model being exported."""
    model, out = model_dir.resolve(), output_dir.resolve()
    if out == model or out in model.parents or model in out.parents:
        raise InputError(f"--output {output_dir} would overwrite the model {model_dir}; "
                         "choose a folder outside it")


def _quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel scales with 7-bit range: on SST-2 dev this costs the default model 0.2
    # points (0.8991 -> 0.8968); plain per-tensor int8 cost 0.8 points.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs generic advice on the root logger
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         per_channel=True, reduce_range=True)
    finally:
        root.setLevel(level)


def cached_onnx(model_dir: Path, quantize: str | None = "int8") -> Path:
    """The ONNX export of an encoder folder, built on first use into the cache and reused
    while the adapter, head and metadata are unchanged."""
    import hashlib

    from polarity.data.registry import cache_root

    digest = hashlib.sha256()
    for name in ("polarity.json", "head.safetensors", "adapter/adapter_model.safetensors"):
        path = model_dir / name
        if path.is_file():
            digest.update(path.read_bytes())
    digest.update(str(quantize).encode())
    folder = cache_root() / "onnx" / f"{read_card(model_dir).name}-{digest.hexdigest()[:16]}"
    if not (folder / "polarity.json").is_file():
        export_onnx(model_dir, folder, quantize)
    return folder
