"""``polarity export``: turn a trained adapter folder into a standalone model folder.

``merge_causal_lm`` folds a Qwen2-tier LoRA adapter into its base and writes full weights, the
tokenizer and the metadata: the result loads with nothing else, in any tool that reads a
Hugging Face folder (vLLM, TGI, llama.cpp's converter).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from polarity.errors import InputError
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
    if output_dir.resolve() == model_dir.resolve():
        raise InputError("--output must differ from --model")
    dtype = dtype or card.extra.get("dtype", "bfloat16")
    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    model = load_causal_lm_model(model_dir, card, dtype)
    partial = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    load_lm_tokenizer(model_dir).save_pretrained(str(partial))
    merged = card.model_copy(deep=True)
    merged.extra = {**card.extra, "dtype": dtype, "merged_from": str(model_dir.resolve())}
    merged.save(partial)
    shutil.rmtree(output_dir, ignore_errors=True)
    partial.replace(output_dir)
    return output_dir
