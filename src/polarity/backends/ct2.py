"""The accurate tier on CTranslate2 int8 (``pip install ctranslate2``: a prebuilt wheel), the
default CPU runtime of the causal LM: the adapter merged into the base and converted once
to CTranslate2's int8 format (cached like the encoder's ONNX export), scored on the same
prompt and label tokens as the PyTorch runtime (:mod:`polarity.prompt`).

The prompt's head is CTranslate2's static prompt, whose keys and values it computes once and
reuses. A call holds texts of one token length (:func:`near_length_groups` with
:data:`MAX_SPAN` 0), so each text's answer is exactly the one it gets alone, whatever else is
in its batch (tested: exactly equal at batch sizes 1, 7 and 20, in shuffled orders).

Texts of different lengths can share a call: CTranslate2 reads the part that all of them
share in length at once, then each further position as a one-token step over all of the
call's texts, and returns for each text the logits of its positions past the shortest
text's, of which the last is its answer (an earlier version read the first, which is why
mixed lengths once seemed to change 34 of 96 labels). On the real tier that is not faster
(each further position is a step over all weights) and not exact: int8 rounding along the
other path moved probabilities by up to 0.076 and one label of 96 (docs/qwen.md), so one
length a call stays the rule.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polarity.backends.interleave import between_batches
from polarity.contract import LoadOptions, ModelInfo, Scored
from polarity.modelcard import ModelCard
from polarity.prompt import prompt_pieces, scoring_ids_batch, tokens_read

#: On CPUs with VNNI the int8 products are exact and the answers within 0.03 of PyTorch's
#: on the tiny test model; with AVX2 alone CTranslate2's library (oneDNN on AMD; MKL, which
#: was close there, ran 8x slower) is coarser: 0.155 on the tiny model, while the real
#: tier scored SST-2 dev 0.9404 on an AVX2-only AMD EPYC and 0.9427 with VNNI.
COMPUTE_TYPE = "int8"
#: Each adapter update is computed and added to its base weight in float32 and the sum kept
#: in float16, which the converter quantises to int8 (:mod:`polarity.backends.merge`, one
#: tensor at a time). Merged in bf16 (the first version), the int8 model lost 0.34 points on
#: SST-2 dev against float32 PyTorch (0.9438 vs 0.9472, 13 labels apart): bf16 rounds the small
#: LoRA update away, float16 keeps it (its rounding is 16 times finer than bf16's). A whole
#: float32 model, as merged before, peaked at 10.8 GB during the conversion.
MERGE_DTYPE = "float16-from-float32"


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
        since, work = 0, 0  # texts and tokens since the last point between batches
        for group in near_length_groups([len(r) for r in rows], batch_size):
            if since >= batch_size:  # a point every batch_size texts, not every group
                between_batches(work)
                since, work = 0, 0
            since += len(group)
            work += sum(len(rows[i]) - h for i in group)
            results = self.generator.generate_batch(
                [self.tokenizer.convert_ids_to_tokens(rows[i][h:]) for i in group],
                static_prompt=self.head, max_length=1, return_logits_vocab=True,
                include_prompt_in_result=False)
            for i, result in zip(group, results, strict=True):
                logits = np.asarray(result.logits[0])
                last = logits.reshape(-1, logits.shape[-1])[-1]  # one row per position
                out[i] = float(last[self.labels[1]]) - float(last[self.labels[0]])
        return Scored(out.tolist())

    def work(self, texts: Sequence[str]) -> list[int]:
        return tokens_read(self.tokenizer, texts, self.card.max_length)


#: The most a call's token lengths may differ. 0: every text is scored exactly as alone;
#: more is faster at large batches but moves int8 answers (see the module's docstring).
MAX_SPAN = 0


def near_length_groups(lengths: list[int], batch_size: int, span: int | None = None
                       ) -> list[list[int]]:
    """Indices, sorted by length, in calls of at most ``batch_size`` texts whose lengths
    differ by at most ``span`` tokens (:data:`MAX_SPAN`)."""
    span = MAX_SPAN if span is None else span
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        group = groups[-1] if groups else None
        if (group is None or len(group) == batch_size
                or lengths[i] - lengths[group[0]] > span):
            groups.append([i])
        else:
            group.append(i)
    return groups


def cached_ct2(folder: Path | None, card: ModelCard) -> Path:
    """The CTranslate2 int8 conversion of a causal LM (its adapter merged), built on first use
    into the cache and reused while the adapter, the card, the base and polarity's version
    are unchanged."""
    from polarity.backends.merge import merged_cache_folder

    out, base = merged_cache_folder("ct2", folder, card, f"{COMPUTE_TYPE}\0{MERGE_DTYPE}")
    if (out / "model.bin").is_file():
        return out
    import tempfile

    import ctranslate2
    from filelock import FileLock

    from polarity.backends.causal_lm import ADAPTER_DIR, lm_tokenizer_for
    from polarity.backends.merge import merge_adapter
    from polarity.folders import replacing_folder

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / "model.bin").is_file():
            return out
        announce(card, out)
        started = time.perf_counter()
        adapter = folder / ADAPTER_DIR if folder is not None else None
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp, \
                replacing_folder(out, marker="model.bin") as partial:
            merge_adapter(local_base(base), adapter if adapter and adapter.is_dir() else None,
                          Path(tmp), "float16")
            lm_tokenizer_for(folder, card).save_pretrained(tmp)
            ctranslate2.converters.TransformersConverter(
                tmp, low_cpu_mem_usage=True, load_as_float16=True).convert(
                str(partial), quantization=COMPUTE_TYPE, force=True)
        print(f"converted in {time.perf_counter() - started:.0f} s, peak memory of this "
              f"process {peak_rss_gib():.1f} GiB -> {out}", file=sys.stderr)
    return out


#: What the first use of a model on CTranslate2 costs, as measured for the 1.5B accurate tier
#: on 2 cores of an Intel Xeon (Sapphire Rapids): 108 s, a peak of 5.0 GiB, 1.7 GB written
#: (docs/qwen.md, "First use").
CONVERSION_SECONDS, CONVERSION_PEAK_GIB, CONVERTED_GB = 110, 5.0, 1.7


def announce(card: ModelCard, out: Path) -> None:
    print(f"{card.name}: converting once to CTranslate2 int8 (adapter merged): about "
          f"{CONVERSION_SECONDS // 60 + 1} min and {CONVERSION_PEAK_GIB:.0f} GiB of memory for a "
          f"1.5B model, {CONVERTED_GB} GB in {out.parent}; later loads take seconds",
          file=sys.stderr)


def peak_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def local_base(base: Path) -> Path:
    """The base model's folder: a local one as is, a hub id downloaded (safetensors and
    config only) where the hub is on."""
    if base.is_dir():
        return base
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(base), allow_patterns=["*.json", "*.safetensors",
                                                             "*.txt", "*.model"]))


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
