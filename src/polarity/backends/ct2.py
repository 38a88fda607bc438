"""The accurate tier on CTranslate2 int8 (``pip install ctranslate2``: a prebuilt wheel), the
default CPU runtime of the causal LM: the adapter merged into the base and converted once
to CTranslate2's int8 format (cached like the encoder's ONNX export), scored on the same
prompt and label tokens as the PyTorch runtime (:mod:`polarity.prompt`).

The prompt's head is CTranslate2's static prompt, whose keys and values it computes once and
reuses. A call holds only texts of one token length (:func:`same_length_groups`):
CTranslate2's batched call pads variable-length texts in a way that changed 34 of 96 labels in
an earlier try, and texts of one length need no padding, so each text's answer is the one it
gets alone, whatever else is in its batch (tested: exactly equal at batch sizes 1, 7 and 20).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polarity.contract import LoadOptions, ModelInfo, Scored
from polarity.modelcard import ModelCard
from polarity.prompt import prompt_pieces, scoring_ids_batch, tokens_read

COMPUTE_TYPE = "int8"
#: The adapter is merged into the base in float32 before quantising: merged in bf16 first, the
#: int8 model lost 0.34 points on SST-2 dev against float32 PyTorch (0.9438 vs 0.9472, 13
#: labels apart); merged in float32 it scored 0.9472 (8 labels apart, as many right).
MERGE_DTYPE = "float32"


class CTranslate2Backend:
    def __init__(self, folder: Path, tokenizer, card: ModelCard, threads: int | None = None,
                 path: Path | None = None):
        import ctranslate2

        self.tokenizer, self.card = tokenizer, card
        self.pieces = prompt_pieces(tokenizer)
        threads = threads or os.cpu_count() or 1  # stated, so that reports can say it
        self.generator = ctranslate2.Generator(str(folder), device="cpu",
                                               compute_type=COMPUTE_TYPE,
                                               intra_threads=threads)
        self.head = tokenizer.convert_ids_to_tokens(self.pieces.head)
        self.labels = list(self.pieces.label_ids)
        self.info = ModelInfo(card.name, "causal_lm", card.version, str(path) if path else None,
                              COMPUTE_TYPE, threads, card.drift_reference,
                              runtime="ctranslate2")

    def score(self, texts: Sequence[str], batch_size: int = 16) -> Scored:
        rows = scoring_ids_batch(self.tokenizer, self.pieces, list(texts), self.card.max_length)
        out = np.empty(len(rows))
        h = len(self.pieces.head)
        for group in same_length_groups([len(r) for r in rows], batch_size):
            results = self.generator.generate_batch(
                [self.tokenizer.convert_ids_to_tokens(rows[i][h:]) for i in group],
                static_prompt=self.head, max_length=1, return_logits_vocab=True,
                include_prompt_in_result=False)
            for i, result in zip(group, results, strict=True):
                logits = np.asarray(result.logits[0]).reshape(-1)
                out[i] = float(logits[self.labels[1]]) - float(logits[self.labels[0]])
        return Scored(out.tolist())

    def work(self, texts: Sequence[str]) -> list[int]:
        return tokens_read(self.tokenizer, texts, self.card.max_length)


def same_length_groups(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices in calls of at most ``batch_size`` texts of one token length: no call pads
    (CTranslate2's padding of texts of different lengths changes their answers), and a row of
    a call is computed as it is alone (int8 products are exact per row), so the answer does
    not depend on the batch."""
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    return [same[s:s + batch_size] for _, same in sorted(by_length.items())
            for s in range(0, len(same), batch_size)]


def cached_ct2(folder: Path | None, card: ModelCard) -> Path:
    """The CTranslate2 int8 conversion of a causal LM (its adapter merged), built on first use
    into the cache and reused while the adapter, the card, the base and polarity's version
    are unchanged."""
    import hashlib

    from polarity.backends.base_models import resolve_base
    from polarity.cache import cache_root
    from polarity.folders import replacing_folder, slug
    from polarity.version import __version__

    base = Path(resolve_base(card.base_model, folder))
    if base.suffix == ".gguf":
        from polarity.registry import RuntimeUnavailable

        # CTranslate2 converts a Hugging Face folder; a GGUF file runs on llama.cpp as is.
        raise RuntimeUnavailable(f"CTranslate2 needs a Hugging Face folder as the base, not "
                                 f"{base.name}")
    digest = hashlib.sha256(f"{__version__}\0{COMPUTE_TYPE}\0{MERGE_DTYPE}".encode())
    for path in sorted(base.glob("*")) if base.is_dir() else [base]:
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    # The weights alone decide the conversion: a new temperature or new metrics in the card
    # keep it, a new adapter does not.
    for path in sorted((folder / "adapter").glob("*")) if folder is not None else []:
        if path.is_file():
            digest.update(path.read_bytes())
    out = cache_root() / "ct2" / f"{slug(card.name)[:64]}-{digest.hexdigest()[:16]}"
    if (out / "model.bin").is_file():
        return out
    import tempfile

    import ctranslate2
    from filelock import FileLock

    from polarity.backends.causal_lm import lm_tokenizer_for, load_causal_lm_model

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / "model.bin").is_file():
            return out
        model = load_causal_lm_model(folder, card, MERGE_DTYPE)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp, \
                replacing_folder(out, marker="model.bin") as partial:
            model.save_pretrained(tmp)
            del model  # the converter loads the saved copy: two float32 copies would need 12 GB
            gc.collect()
            lm_tokenizer_for(folder, card).save_pretrained(tmp)
            ctranslate2.converters.TransformersConverter(tmp, low_cpu_mem_usage=True).convert(
                str(partial), quantization=COMPUTE_TYPE, force=True)
    return out


def load_ctranslate2_backend(folder: Path | None, card: ModelCard,
                             options: LoadOptions | None = None) -> CTranslate2Backend:
    from polarity.backends.causal_lm import lm_tokenizer_for

    options = options or LoadOptions()
    started = time.perf_counter()
    converted = cached_ct2(folder, card)
    backend = CTranslate2Backend(converted, lm_tokenizer_for(folder, card), card,
                                 options.threads, folder)
    backend.load_seconds = time.perf_counter() - started
    return backend
