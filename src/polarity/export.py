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
from polarity.modelcard import check_folder, read_card


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
    check_folder(model_dir, card)
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
                opset: int = 17, calibration_file: str | Path | None = None,
                down_projections: str = "float") -> Path:
    """Encoder (adapter merged) + pooling + head as one ONNX graph (or one graph per stage of
    a model with early exits), with the tokenizer and metadata; ``quantize="int8"`` adds
    static int8 weights and activations (the files the card points to), calibrated as
    :mod:`polarity.quantize` describes, the FFN down-projections as ``down_projections`` says
    (:data:`polarity.quantize.DOWN_PROJECTIONS`)."""
    from polarity.backends.base_models import resolve_base
    from polarity.backends.encoder import load_encoder_model, load_tokenizer
    from polarity.backends.exits import ExitPlan

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    card = read_card(model_dir)
    check_folder(model_dir, card)
    if card.backend != "encoder":
        raise InputError(f"{model_dir} is a {card.backend!r} model; --onnx exports the encoder "
                         "tier")
    if quantize not in ONNX_FILES:
        raise InputError(f"--quantize {quantize!r}; choose int8 or leave it out")
    if down_projections != "float" and quantize != "int8":
        raise InputError("--int8-down-projections applies to an int8 export: add --quantize "
                         "int8")
    check_output(model_dir, output_dir)
    model = load_encoder_model(model_dir, card)
    tokenizer = load_tokenizer(resolve_base(card.base_model, model_dir))
    plan = ExitPlan.from_card(card)
    with replacing_folder(output_dir) as partial:
        graphs = (_trace_stages(model, plan, tokenizer, partial, opset) if plan
                  else [_trace(model, tokenizer, partial / ONNX_FILES[None], opset)])
        extra: dict = {}
        if quantize == "int8":
            extra = _quantize(model_dir, card, graphs, tokenizer, calibration_file,
                              down_projections)
            graphs = [_int8_name(g) for g in graphs]
        tokenizer.save_pretrained(str(partial))
        _copy_long_texts(model_dir, card, partial)
        exported = card.model_copy(deep=True)
        exported.backend = "onnx"
        files = {"stages": [g.name for g in graphs]} if plan else {"file": graphs[0].name}
        exported.extra = {**card.extra, **files, "quantize": quantize,
                          "exported_from": str(model_dir.resolve()), "opset": opset, **extra}
        exported.save(partial)
    return output_dir


def _copy_long_texts(model_dir: Path, card, folder: Path) -> None:
    """The long-text reader's weights travel with the graph (the card names them)."""
    import shutil

    from polarity.backends.long_texts import reader_file

    name = reader_file(card)
    if name and (model_dir / name).is_file():  # else loading says what is missing
        shutil.copyfile(model_dir / name, folder / name)


def _trace(module, tokenizer, path: Path, opset: int, inputs: tuple | None = None,
           names: tuple[list[str], list[str]] | None = None) -> Path:
    import torch

    sample = tokenizer(["an example to trace", "short"], padding=True, return_tensors="pt")
    inputs = inputs or (sample["input_ids"], sample["attention_mask"])
    in_names, out_names = names or (["input_ids", "attention_mask"], ["logits"])
    axes = {0: "batch", 1: "tokens"}
    dynamic = {name: axes for name in in_names} | {"logits": {0: "batch"}, "hidden": axes}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes we do not vary
        torch.onnx.export(module, inputs, str(path), input_names=in_names,
                          output_names=out_names, opset_version=opset, dynamo=False,
                          dynamic_axes={k: v for k, v in dynamic.items()
                                        if k in in_names + out_names})
    return path


def _trace_stages(model, plan, tokenizer, folder: Path, opset: int) -> list[Path]:
    """One graph per stage: ``stage-I.onnx`` takes ``input_ids`` (the first) or ``hidden``
    (the others) and ``attention_mask``, and gives ``hidden`` and ``logits``."""
    import torch

    from polarity.backends.exit_heads import Stage

    sample = tokenizer(["an example to trace", "short"], padding=True, return_tensors="pt")
    x, mask = sample["input_ids"], sample["attention_mask"]
    paths = []
    for i in range(len(plan.layers) + 1):
        stage = Stage(model, plan, i).eval()
        first = "input_ids" if i == 0 else "hidden_in"
        paths.append(_trace(stage, tokenizer, folder / f"stage-{i}.onnx", opset, (x, mask),
                            ([first, "attention_mask"], ["hidden", "logits"])))
        with torch.inference_mode():
            x = stage(x, mask)[0]
    return paths


def _int8_name(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".onnx") + ".int8.onnx")


def _quantize(model_dir: Path, card, graphs: list[Path], tokenizer,
              calibration_file: str | Path | None, down: str) -> dict:
    """Static int8 of each graph, with the model's stored ranges or ranges measured on
    training texts (``calibration.json``; ``calibration-stage-I.json`` for stages)."""
    import shutil

    import numpy as np
    import onnxruntime as ort

    from polarity.preprocess import apply_all
    from polarity.quantize import (
        CALIBRATION_FILE,
        CALIBRATION_TEXTS,
        quantize_static_int8,
        token_feeds,
    )

    texts, source = calibration_texts(card, calibration_file)
    feeds = token_feeds(tokenizer, apply_all(texts, card.preprocessing), card.max_length)
    measured = []
    for i, graph in enumerate(graphs):
        name = CALIBRATION_FILE if len(graphs) == 1 else f"calibration-stage-{i}.json"
        ranges, stored = graph.parent / name, model_dir / name
        if stored.is_file() and calibration_file is None:
            shutil.copyfile(stored, ranges)
        if not ranges.is_file() and not texts:
            raise InputError(f"{model_dir} has no {name} and its training file is not here "
                             "to calibrate int8 on: pass --calibration-file with training "
                             "texts, or export without --quantize")
        measured.append(quantize_static_int8(graph, _int8_name(graph), ranges, feeds, down))
        if i + 1 < len(graphs) and feeds:  # the next stage calibrates on this one's output
            session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
            feeds = [{"hidden_in": session.run(["hidden"], f)[0].astype(np.float32),
                      "attention_mask": f["attention_mask"]} for f in feeds]
    return {"calibration": f"measured on {CALIBRATION_TEXTS} texts of {source}"
            if any(measured) else "ranges stored with the model",
            "int8_down_projections": down}


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
    while every file of the folder, the base weights and polarity's version are unchanged."""
    folder = onnx_cache_folder(model_dir, quantize)
    if (folder / "polarity.json").is_file():
        return folder
    from filelock import FileLock

    # Workers starting together would otherwise export into the same .partial folder at
    # once; the first exports, the others wait and then find it done.
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "polarity.json").is_file():
            export_onnx(model_dir, folder, quantize)
    return folder


def onnx_cache_folder(model_dir: Path, quantize: str | None = "int8") -> Path:
    """Where :func:`cached_onnx` keeps a folder's export: named by the card's name (made
    safe as a path component) and a digest of everything the graph depends on: the content
    of every file of the folder (not a list of the files known today, which once missed
    ``adapter_config.json``: a changed ``lora_alpha`` kept serving the old export)."""
    import hashlib

    from polarity.backends.base_models import resolve_base
    from polarity.cache import cache_root, hash_model_folder
    from polarity.folders import slug
    from polarity.version import __version__

    card = read_card(model_dir)
    digest = hashlib.sha256(f"{__version__}\0{quantize}".encode())
    hash_model_folder(Path(model_dir), digest)
    # The base weights and tokenizer go into the graph too: another version of the base
    # package must not reuse an export of the old one (size and time of change: hashing
    # 90 MB at every start would cost more than it guards against).
    base = Path(resolve_base(card.base_model, model_dir))
    for path in sorted(base.glob("*")) if base.is_dir() else []:
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return cache_root() / "onnx" / f"{slug(card.name)[:64]}-{digest.hexdigest()[:16]}"


def load_exported_encoder(folder: Path, card, options):
    """The encoder tier on ONNX Runtime: its cached static-int8 export, loaded."""
    from polarity.backends.onnx import load_onnx_backend

    exported = cached_onnx(folder)
    return load_onnx_backend(exported, read_card(exported), options)

