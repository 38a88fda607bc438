"""The encoder tier on ONNX Runtime: one graph (encoder with the adapter merged, mean pooling,
head) exported once, optionally int8-quantised, run with the fast tokenizer.

A folder holds ``model.onnx`` (or ``model.int8.onnx``), the tokenizer and ``polarity.json``
with backend ``onnx``; it needs neither PyTorch weights nor the base model to load.

A batch is cut into row shards, one per thread, each run by a single-threaded session call
at the same time (ONNX Runtime releases the GIL), rather than one call spreading every
operator over the threads. At these sizes ONNX Runtime's own intra-op threading mostly
waits on itself: measured on 2 cores (a Xeon with AMX), a batch of 32 tweets took 50.6 ms
as one two-thread call and 39.8 ms as two 16-row calls side by side, a single tweet 3.45 ms
on two threads and 2.9 ms on one. A row's answer does not depend on the rows beside it
(static int8; ``tests/backends/test_same_answer.py``), so sharding cannot change one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from polarity.backends.exits import ExitPlan, cascade
from polarity.backends.long_texts import load_reader
from polarity.backends.windows import score_texts, text_tokens
from polarity.contract import LoadOptions, ModelInfo, Scored
from polarity.modelcard import ModelCard


def session(path: Path):
    """A single-threaded session: the threads are the row shards' (module docstring)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def shards(rows: int, parts: int) -> list[slice]:
    """``rows`` cut into at most ``parts`` contiguous slices of nearly equal size."""
    parts = max(1, min(parts, rows))
    bounds = [rows * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def _join(results: list):
    if isinstance(results[0], tuple):  # early exits: (logits, exit layer per row)
        return tuple(np.concatenate(parts) for parts in zip(*results, strict=True))
    return np.concatenate(results)


class OnnxBackend:
    """The encoder on ONNX Runtime; texts sorted by length, padded per batch."""

    def __init__(self, folder: Path, card: ModelCard, threads: int | None = None):
        from transformers import AutoTokenizer

        self.card = card
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.plan = ExitPlan.from_card(card)
        self.long_reader = load_reader(folder, card)
        files = card.extra.get("stages") or [card.extra["file"]]
        self.sessions = [session(folder / name) for name in files]
        self.threads = threads or os.cpu_count() or 1
        self.pool = (ThreadPoolExecutor(self.threads - 1, thread_name_prefix="onnx-shard")
                     if self.threads > 1 else None)
        self.info = ModelInfo(card.name, "onnx", card.version, str(folder),
                              card.extra.get("quantize") or "float32", self.threads,
                              card.drift_reference, runtime="onnx")

    def _logits(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        """The batch's logits, its row shards run side by side: the calling thread runs
        the first, the pool the rest; each shard padded only to its own longest row."""
        parts = shards(len(input_ids), self.threads)
        if len(parts) == 1:
            return self._run(input_ids, attention_mask)

        def run(part: slice):
            mask = attention_mask[part]
            width = int(mask.sum(axis=1).max())
            return self._run(input_ids[part, :width], mask[:, :width])

        later = [self.pool.submit(run, part) for part in parts[1:]]
        return _join([run(parts[0]), *(f.result() for f in later)])

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        if len(self.sessions) > 1:
            return cascade(input_ids, attention_mask, self._run_stage, self.plan,
                           self.card.temperature)
        return self.sessions[0].run(["logits"], {"input_ids": input_ids,
                                                 "attention_mask": attention_mask})[0]

    def _run_stage(self, i: int, x: np.ndarray, attention_mask: np.ndarray):
        name = "input_ids" if i == 0 else "hidden_in"
        hidden, logits = self.sessions[i].run(["hidden", "logits"],
                                              {name: x, "attention_mask": attention_mask})
        return hidden, logits

    def score(self, texts: Sequence[str], batch_size: int = 32) -> Scored:
        return score_texts(self.tokenizer, self.card, texts, batch_size, self._logits,
                           self.long_reader)

    def work(self, texts: Sequence[str]) -> list[int]:
        return text_tokens(self.tokenizer, self.card, texts)


def load_onnx_backend(folder: Path, card: ModelCard, options: LoadOptions | None = None
                      ) -> OnnxBackend:
    options = options or LoadOptions()
    started = time.perf_counter()
    backend = OnnxBackend(folder, card, options.threads)
    backend.load_seconds = time.perf_counter() - started
    return backend
