"""The accurate tier on ONNX Runtime with int8 products (:mod:`polarity.backends.onnx_lm_graph`):
the adapter merged into the base and written once as a graph (cached like CTranslate2's
conversion), scored on the same prompt and label tokens as the other runtimes
(:mod:`polarity.prompt`). The accurate tier's default CPU runtime (``--runtime onnx_lm``): with
its products smoothed (:mod:`polarity.backends.onnx_lm_smooth`) its labels are 2 of SST-2 dev's
872 apart from PyTorch float32, CTranslate2's int8 5 (docs/qwen.md); Qwen2 and Llama-style
models of a Hugging Face folder only (others go on to CTranslate2 under ``auto``).

The prompt's head runs once, at load, through the same graph; its keys and values are fed to
every later call. A call holds texts whose lengths differ by at most :data:`MAX_PAD` tokens,
padded at the end: a token sees only the tokens before it, the int8 scales are per row, so a
text computes what it computes alone (tested: equal at batch sizes 1, 7 and 20, in shuffled
orders). Only the two label tokens' rows of the output layer are computed (the score is
their difference), and two calls run at once (:data:`CALLS_AT_ONCE`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from polarity.backends.ct2 import near_length_groups
from polarity.backends.interleave import between_batches
from polarity.backends.onnx_lm_graph import EMBEDDINGS_FILE, GRAPH_FILE, SHAPES_FILE
from polarity.backends.onnx_lm_smooth import ALPHA, CALIBRATION_TEXTS, activation_maxima
from polarity.contract import LoadOptions, ModelInfo, Scored
from polarity.int8_rows import weight_range
from polarity.modelcard import ModelCard
from polarity.prompt import prompt_pieces, scoring_ids_batch, tokens_read

#: ``float32`` builds the same graph with float products (the tests' check of the graph).
COMPUTE_TYPE = "int8"
#: Part of the cache key: a new graph layout rebuilds every cached graph.
GRAPH_VERSION = 9
#: The most padding a text of a call gets (tokens): calls of up to ``batch_size`` texts whose
#: lengths differ by at most this.
MAX_PAD = 16
#: Calls in flight at once: ONNX Runtime's steps between the products (norms, quantising the
#: rows, attention) leave cores idle that a second call fills: +25% texts/s at batch 16 on 2
#: cores, measured (docs/qwen.md).
CALLS_AT_ONCE = 2


def rope_tables(theta: float, head_dim: int, positions: np.ndarray) -> tuple[np.ndarray, ...]:
    """cos and sin of the rotary embedding at ``positions`` (``[T, head_dim]``, float32, as
    Hugging Face's Qwen2 computes them)."""
    inverse = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32)
                               / head_dim))
    angles = np.outer(positions.astype(np.float32), inverse).astype(np.float32)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles), np.sin(angles)


def causal_mask(past: int, new: int, group: int) -> np.ndarray:
    """Additive mask ``[group x new, past + new]``: each new token sees the cache and the new
    tokens up to itself; rows repeat for each query head sharing a key head."""
    allowed = np.arange(past + new)[None, :] <= past + np.arange(new)[:, None]
    mask = np.where(allowed, 0.0, -np.inf).astype(np.float32)
    return np.tile(mask, (group, 1))


class OnnxLMBackend:
    def __init__(self, folder: Path, tokenizer, card: ModelCard, threads: int | None = None,
                 path: Path | None = None):
        import onnxruntime as ort

        self.tokenizer, self.card = tokenizer, card
        self.pieces = prompt_pieces(tokenizer)
        self.shapes = json.loads((folder / SHAPES_FILE).read_text())
        if self.shapes["label_ids"] != list(self.pieces.label_ids):
            raise ValueError(f"{folder}: built for label tokens {self.shapes['label_ids']}, the "
                             f"tokenizer's are {list(self.pieces.label_ids)}")
        threads = threads or os.cpu_count() or 1
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no notes on the graph's spare constants
        self.session = ort.InferenceSession(str(folder / GRAPH_FILE), options,
                                            providers=["CPUExecutionProvider"])
        self.embeddings = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r")
        self.head = len(self.pieces.head)
        self.cache = self._run([self.pieces.head], self._empty_cache())[1]
        self.pool = ThreadPoolExecutor(CALLS_AT_ONCE, thread_name_prefix="onnx-lm")
        self.info = ModelInfo(card.name, "causal_lm", card.version, str(path) if path else None,
                              COMPUTE_TYPE, threads, card.drift_reference, runtime="onnx_lm")

    def _empty_cache(self) -> dict[str, np.ndarray]:
        s = self.shapes
        empty = np.zeros((1, s["kv_heads"], 0, s["head_dim"]), np.float32)
        return {f"past_{kind}.{layer}": empty for layer in range(s["layers"])
                for kind in ("key", "value")}

    def _run(self, rows: list[list[int]], cache: dict[str, np.ndarray]):
        """Label logits of ``rows`` after ``cache``; and the new cache. Shorter rows are padded
        at the end: a row's tokens see only the tokens before them, so padding changes
        nothing of what a text computes, and each row's last token is read."""
        s = self.shapes
        past = next(iter(cache.values())).shape[2]
        new = max(len(r) for r in rows)
        embeds = np.zeros((len(rows), new, self.embeddings.shape[1]), np.float32)
        for i, row in enumerate(rows):
            embeds[i, :len(row)] = self.embeddings[row]
        cos, sin = rope_tables(s["rope_theta"], s["head_dim"], np.arange(past, past + new))
        last = np.asarray([i * new + len(r) - 1 for i, r in enumerate(rows)], np.int64)
        feed = {"inputs_embeds": embeds, "cos": cos, "sin": sin, "last": last,
                "mask": causal_mask(past, new, s["heads"] // s["kv_heads"]), **cache}
        names = [o.name for o in self.session.get_outputs()]
        wanted = names if past == 0 else names[:1]  # the head's cache once, at load
        outputs = dict(zip(wanted, self.session.run(wanted, feed), strict=True))
        present = {n.replace("present", "past"): v for n, v in outputs.items() if n != "logits"}
        return outputs["logits"], present

    def score(self, texts: Sequence[str], batch_size: int = 16) -> Scored:
        rows = scoring_ids_batch(self.tokenizer, self.pieces, list(texts), self.card.max_length)
        out = np.empty(len(rows))
        groups = iter(near_length_groups([len(r) for r in rows], batch_size, MAX_PAD))
        pending: deque = deque()

        def submit() -> None:
            group = next(groups, None)
            if group is not None:
                tail = [rows[i][self.head:] for i in group]
                pending.append((group, self.pool.submit(self._run, tail, self.cache)))

        try:
            for _ in range(CALLS_AT_ONCE):
                submit()
            while pending:
                group, call = pending.popleft()
                logits = call.result()[0]
                out[group] = logits[:, 1] - logits[:, 0]
                if pending:  # between two calls of this one: others' texts may run
                    between_batches(sum(len(rows[i]) - self.head for i in group))
                submit()
        finally:  # on an error, no call of this one is left running or unread
            for _, call in pending:
                call.cancel()
            wait([call for _, call in pending])
        return Scored(out.tolist())

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def work(self, texts: Sequence[str]) -> list[int]:
        return tokens_read(self.tokenizer, texts, self.card.max_length)


#: What the first use costs, as measured for the 1.5B accurate tier on 2 cores of an AMD EPYC
#: (docs/qwen.md, "First use"): seconds and peak memory with bfloat16 products (AVX512-BF16)
#: and without them (AVX2: the activations are measured in float32), GB written.
BUILD_COST = {True: (50, 4.7), False: (100, 5.1)}
BUILT_GB = 1.7
#: Whether the graph's products are smoothed first (:mod:`polarity.backends.onnx_lm_smooth`).
SMOOTH = True
#: Whether products that share an input run as one (q, k, v; gate, up): the same numbers,
#: faster (docs/qwen.md, "Joined products"); False only for benchmarks' comparison.
JOIN = True


def calibration_texts() -> list[str]:
    """The packaged curated texts that measure the activation maxima (their labels unused)."""
    from polarity.data.curated import curated_path
    from polarity.data.tables import iter_rows

    rows = iter_rows(curated_path(), required=("text",))
    return [row.fields["text"] for row in rows if row.fields][::2][:CALIBRATION_TEXTS]


def cached_onnx_lm(folder: Path | None, card: ModelCard, tokenizer) -> Path:
    """The int8 ONNX graph of a causal LM (its adapter merged, its products smoothed), built
    on first use into the cache and reused while the adapter, the base and polarity's version
    are unchanged."""
    import tempfile

    from filelock import FileLock

    from polarity.backends.causal_lm import ADAPTER_DIR
    from polarity.backends.ct2 import local_base, peak_rss_gib
    from polarity.backends.merge import merge_adapter, merged_cache_folder
    from polarity.cpu import bfloat16_products
    from polarity.folders import replacing_folder
    from polarity.registry import RuntimeUnavailable

    label_ids = list(prompt_pieces(tokenizer).label_ids)
    largest = weight_range()
    smooth = f"alpha {ALPHA} on {CALIBRATION_TEXTS}" if SMOOTH else "none"
    out, base = merged_cache_folder("onnx-lm", folder, card, f"{COMPUTE_TYPE}\0{GRAPH_VERSION}"
                                    f"\0{largest}\0{label_ids}\0{smooth}"
                                    + ("" if JOIN else "\0separate"))
    if (out / GRAPH_FILE).is_file():
        return out
    from polarity.backends.onnx_lm_graph import build_graph, unsupported

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / GRAPH_FILE).is_file():
            return out
        source = local_base(base)
        reason = unsupported(json.loads((source / "config.json").read_text()))
        if reason:  # with runtime auto, the next runtime takes it, unannounced
            raise RuntimeUnavailable(reason)
        seconds, peak = BUILD_COST[bfloat16_products()]
        print(f"{card.name}: writing it once as an int8 ONNX graph (adapter merged, "
              f"{CALIBRATION_TEXTS} texts measuring its activations): about {seconds} s "
              f"and {peak:.1f} GiB of memory for a 1.5B model on 2 cores, {BUILT_GB} GB in "
              f"{out.parent}; later loads take seconds", file=sys.stderr)
        started = time.perf_counter()
        adapter = folder / ADAPTER_DIR if folder is not None else None
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp, \
                replacing_folder(out, marker=GRAPH_FILE) as partial:
            merge_adapter(source, adapter if adapter and adapter.is_dir() else None,
                          Path(tmp), "float16")
            maxima = activation_maxima(Path(tmp), tokenizer, calibration_texts(),
                                       card.max_length, max_pad=MAX_PAD) if SMOOTH else None
            build_graph(Path(tmp), Path(partial), label_ids, COMPUTE_TYPE == "int8",
                        largest, maxima, JOIN)
        print(f"written in {time.perf_counter() - started:.0f} s, peak memory of this "
              f"process {peak_rss_gib():.1f} GiB -> {out}", file=sys.stderr)
    return out


def load_onnx_lm_backend(folder: Path | None, card: ModelCard,
                         options: LoadOptions | None = None) -> OnnxLMBackend:
    from polarity.backends.causal_lm import lm_tokenizer_for

    options = options or LoadOptions()
    started = time.perf_counter()
    tokenizer = lm_tokenizer_for(folder, card)
    built = cached_onnx_lm(folder, card, tokenizer)
    backend = OnnxLMBackend(built, tokenizer, card, options.threads, folder)
    backend.load_seconds = time.perf_counter() - started
    return backend
