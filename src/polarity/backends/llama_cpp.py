"""The accurate tier on llama.cpp (``llama-cpp-python``): the causal LM with its adapter merged
and quantised to Q8_0 in one GGUF file (:func:`polarity.export.cached_gguf`), scored on the
same prompt and label tokens as the PyTorch runtime (:mod:`polarity.prompt`).

The prompt's head is evaluated once, at load, and stays in the KV cache at positions 0 to
h-1. Each text then runs alone: the cache is cut back to the head and the text's own tokens
are evaluated after it, so a text's answer is computed the same way whatever else is in its
batch (``batch_size`` only sets how many texts one call takes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polarity.contract import LoadOptions, ModelInfo, Scored
from polarity.modelcard import ModelCard
from polarity.prompt import prompt_pieces, scoring_ids_batch, tokens_read


class LlamaCppBackend:
    def __init__(self, gguf: Path, tokenizer, card: ModelCard, threads: int | None = None,
                 path: Path | None = None):
        from llama_cpp import Llama

        self.tokenizer, self.card = tokenizer, card
        self.pieces = prompt_pieces(tokenizer)
        # llama-cpp-python's own default is half the cores: one thread on two cores.
        threads = threads or os.cpu_count() or 1
        self.llm = Llama(model_path=str(gguf), n_ctx=card.max_length + 8,
                         n_batch=card.max_length + 8, n_threads=threads, n_threads_batch=threads,
                         logits_all=False, verbose=False)
        self.head = len(self.pieces.head)
        self.llm.eval(self.pieces.head)  # stays in the cache at positions 0..head-1
        self.labels = list(self.pieces.label_ids)
        quant = gguf.name.removesuffix(".gguf").rsplit(".", 1)[-1]
        self.info = ModelInfo(card.name, "causal_lm", card.version, str(path) if path else None,
                              quant, self.llm.context_params.n_threads, card.drift_reference,
                              runtime="llama_cpp")

    def score(self, texts: Sequence[str], batch_size: int = 16) -> Scored:
        rows = scoring_ids_batch(self.tokenizer, self.pieces, list(texts), self.card.max_length)
        out = np.empty(len(rows))
        for i, row in enumerate(rows):
            self.llm.n_tokens = self.head  # eval() first drops every cached token after it
            self.llm.eval(row[self.head:])
            logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(),
                                           shape=(self.llm.n_vocab(),))
            out[i] = float(logits[self.labels[1]]) - float(logits[self.labels[0]])
        return Scored(out.tolist())

    def work(self, texts: Sequence[str]) -> list[int]:
        return tokens_read(self.tokenizer, texts, self.card.max_length)


def load_llama_cpp_backend(folder: Path | None, card: ModelCard,
                           options: LoadOptions | None = None) -> LlamaCppBackend:
    from polarity.backends.causal_lm import lm_tokenizer_for
    from polarity.backends.merged_gguf import cached_gguf

    options = options or LoadOptions()
    started = time.perf_counter()
    gguf = cached_gguf(folder, card)
    backend = LlamaCppBackend(gguf, lm_tokenizer_for(folder, card), card, options.threads,
                              folder)
    backend.load_seconds = time.perf_counter() - started
    return backend
