"""The encoder tier on ONNX Runtime: one graph (encoder with the adapter merged, mean pooling,
head) exported once, optionally int8-quantised, run with the fast tokenizer.

A folder holds ``model.onnx`` (or ``model.int8.onnx``), the tokenizer and ``polarity.json``
with backend ``onnx``; it needs neither PyTorch weights nor the base model to load.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polarity.backends.exits import ExitPlan, cascade
from polarity.backends.long_texts import load_reader
from polarity.backends.windows import score_texts, text_tokens
from polarity.contract import LoadOptions, ModelInfo, Scored
from polarity.modelcard import ModelCard


def session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # Idle intra-op threads spin by default; beside an event loop, other workers or other
    # jobs on a small machine that burns the cores they need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxBackend:
    """The encoder on ONNX Runtime; texts sorted by length, padded per batch."""

    def __init__(self, folder: Path, card: ModelCard, threads: int | None = None):
        from transformers import AutoTokenizer

        self.card = card
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.plan = ExitPlan.from_card(card)
        self.long_reader = load_reader(folder, card)
        files = card.extra.get("stages") or [card.extra["file"]]
        self.sessions = [session(folder / name, threads) for name in files]
        used = self.sessions[0].get_session_options().intra_op_num_threads or os.cpu_count()
        self.info = ModelInfo(card.name, "onnx", card.version, str(folder),
                              card.extra.get("quantize") or "float32", used,
                              card.drift_reference)

    def _logits(self, input_ids: np.ndarray, attention_mask: np.ndarray):
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
