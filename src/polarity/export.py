"""``polarity export``: turn a trained adapter folder into a standalone model folder.

``merge_causal_lm`` folds a Qwen2-tier LoRA adapter into its base and writes full weights, the
tokenizer and the metadata: the result loads with nothing else, in any tool that reads a
Hugging Face folder (vLLM, TGI, llama.cpp's converter). ``export_onnx`` writes the encoder
tier as one ONNX graph (optionally int8) for ONNX Runtime.
"""

from __future__ import annotations

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
                opset: int = 17, calibration_file: str | Path | None = None) -> Path:
    """Encoder (adapter merged) + pooling + head as one ONNX graph, with the tokenizer and
    metadata; ``quantize="int8"`` adds static int8 weights and activations (the file the card
    points to), calibrated as :mod:`polarity.quantize` describes."""
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
        extra = {}
        if quantize == "int8":
            extra = _quantize(model_dir, card, partial, tokenizer, calibration_file)
        tokenizer.save_pretrained(str(partial))
        exported = card.model_copy(deep=True)
        exported.backend = "onnx"
        exported.extra = {**card.extra, "file": ONNX_FILES[quantize], "quantize": quantize,
                          "exported_from": str(model_dir.resolve()), "opset": opset, **extra}
        exported.save(partial)
    return output_dir


def _quantize(model_dir: Path, card, partial: Path, tokenizer,
              calibration_file: str | Path | None) -> dict:
    """Static int8 with the model's stored ranges, or ranges measured on training texts."""
    import shutil

    from polarity.preprocess import apply_all
    from polarity.quantize import CALIBRATION_FILE, CALIBRATION_TEXTS, quantize_static_int8

    ranges = partial / CALIBRATION_FILE
    stored = model_dir / CALIBRATION_FILE
    if stored.is_file() and calibration_file is None:
        shutil.copyfile(stored, ranges)
    texts, source = calibration_texts(card, calibration_file)
    if not ranges.is_file() and not texts:
        raise InputError(f"{model_dir} has no {CALIBRATION_FILE} and its training file is not "
                         "here to calibrate int8 on: pass --calibration-file with training "
                         "texts, or export without --quantize")
    measured = quantize_static_int8(partial / ONNX_FILES[None], partial / ONNX_FILES["int8"],
                                    ranges, tokenizer, apply_all(texts, card.preprocessing),
                                    card.max_length)
    return {"calibration": f"measured on {CALIBRATION_TEXTS} texts of {source}" if measured
            else f"{CALIBRATION_FILE} stored with the model"}


def calibration_texts(card, calibration_file: str | Path | None) -> tuple[list[str], str]:
    """A fixed sample of texts to measure int8 ranges on: from ``calibration_file``, else from
    the training file the card names, when it is on this machine."""
    from polarity.data.writers import read_rows
    from polarity.quantize import sample_texts

    path = calibration_file or (card.training.get("data") or {}).get("train_file")
    if not path or not Path(path).exists():
        if calibration_file:
            raise InputError(f"calibration file not found: {calibration_file}")
        return [], ""
    return sample_texts(r.get("text") for r in read_rows(path, on_bad=lambda *_: None)), \
        str(path)


def check_output(model_dir: Path, output_dir: Path) -> None:
    """The export replaces ``output_dir`` whole, so it must not be, hold or sit inside the
    model being exported."""
    model, out = model_dir.resolve(), output_dir.resolve()
    if out == model or out in model.parents or model in out.parents:
        raise InputError(f"--output {output_dir} would overwrite the model {model_dir}; "
                         "choose a folder outside it")


def cached_onnx(model_dir: Path, quantize: str | None = "int8") -> Path:
    """The ONNX export of an encoder folder, built on first use into the cache and reused
    while the adapter, head and metadata are unchanged."""
    import hashlib

    from polarity.data.registry import cache_root

    digest = hashlib.sha256()
    for name in ("polarity.json", "head.safetensors", "adapter/adapter_model.safetensors",
                 "calibration.json"):
        path = model_dir / name
        if path.is_file():
            digest.update(path.read_bytes())
    digest.update(str(quantize).encode())
    folder = cache_root() / "onnx" / f"{read_card(model_dir).name}-{digest.hexdigest()[:16]}"
    if not (folder / "polarity.json").is_file():
        export_onnx(model_dir, folder, quantize)
    return folder
