"""A causal LM folder (base + LoRA adapter) as one GGUF file for llama.cpp: the adapter merged
into the base, the matrices quantised (Q8_0), the base GGUF's metadata (architecture,
tokenizer, chat template) copied over; built once into the cache and reused
(:func:`cached_gguf`), as the encoder's ONNX export is."""

from __future__ import annotations

from pathlib import Path

from polarity.modelcard import read_card

GGUF_TYPES = {"q8_0": "Q8_0", "f16": "F16"}


def base_gguf(card, folder: Path | None) -> Path:
    """The base model of a causal LM card as a GGUF file (its metadata and tokenizer are
    copied into merged exports), or an error naming what to do."""
    from polarity.pull import GGUF_NAME, RELEASES, models_dir
    from polarity.registry import RuntimeUnavailable

    ref = card.base_model
    if ref in RELEASES:
        path = models_dir() / ref / GGUF_NAME
        if not path.is_file():
            raise RuntimeUnavailable(f"the llama_cpp runtime needs {ref}'s GGUF file ({path}), "
                                     f"which `polarity models pull {ref}` keeps (unless "
                                     "--drop-gguf): pull it again, or use --runtime torch")
        return path
    path = Path(ref).expanduser()
    if not path.is_absolute() and folder is not None:
        path = folder / path
    if path.suffix == ".gguf" and path.is_file():
        return path.resolve()
    if path.is_dir() and (path.parent / GGUF_NAME).is_file():  # a pulled model's bf16 folder
        return (path.parent / GGUF_NAME).resolve()
    raise RuntimeUnavailable(f"the llama_cpp runtime needs a GGUF base model; {ref!r} is not "
                             "one: use --runtime torch")


def export_gguf(model_dir: Path, output: Path, quant: str = "q8_0") -> Path:
    """A causal LM folder (base + adapter) as one GGUF file for llama.cpp: the adapter merged
    into the base in float32, the matrices quantised to ``quant``, the base GGUF's metadata
    (architecture, tokenizer, chat template) copied over."""
    import gguf
    import numpy as np
    import torch

    from polarity.backends.causal_lm import load_causal_lm_model

    card = read_card(model_dir)
    source = base_gguf(card, model_dir)
    model = load_causal_lm_model(model_dir, card, "float32")
    reader = gguf.GGUFReader(str(source))
    arch = reader.fields["general.architecture"].contents()
    qtype = getattr(gguf.GGMLQuantizationType, GGUF_TYPES[quant])
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    writer = gguf.GGUFWriter(str(partial), arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in ("general.architecture",
                                                            "general.file_type"):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quant == "q8_0"
                         else gguf.LlamaFileType.MOSTLY_F16)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()],
                                     model.config.num_hidden_layers)
    tied = model.config.tie_word_embeddings
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name == "lm_head.weight" and tied:
                continue
            data = tensor.float().numpy()
            target = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if data.ndim == 2 and data.shape[1] % 32 == 0:
                writer.add_tensor(target, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
            else:  # norms and biases stay float32, as llama.cpp's converter keeps them
                writer.add_tensor(target, data.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(output)
    return output


def cached_gguf(model_dir: Path | None, card, quant: str = "q8_0") -> Path:
    """The GGUF file llama.cpp runs for a causal LM: the base GGUF itself for a model
    without an adapter, else the merged export, built on first use into the cache."""
    import hashlib

    from polarity.backends.causal_lm import ADAPTER_DIR
    from polarity.cache import cache_root
    from polarity.folders import slug
    from polarity.version import __version__

    source = base_gguf(card, model_dir)
    if model_dir is None or not (model_dir / ADAPTER_DIR).is_dir():
        return source
    stat = source.stat()
    digest = hashlib.sha256(f"{__version__}\0{quant}\0{stat.st_size}\0"
                            f"{stat.st_mtime_ns}".encode())
    for path in sorted((model_dir / ADAPTER_DIR).glob("*")):  # the weights, not the card
        if path.is_file():
            digest.update(path.read_bytes())
    out = (cache_root() / "gguf" / f"{slug(card.name)[:64]}-{digest.hexdigest()[:16]}"
           / f"model.{quant}.gguf")
    if out.is_file():
        return out
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not out.is_file():
            export_gguf(model_dir, out, quant)
    return out
