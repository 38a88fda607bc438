"""The accurate tier: a Qwen2-style causal LM, optionally with a LoRA adapter, scored on labels.

The label is decided by one forward pass over the prompt plus ``Sentiment:``: P(POSITIVE)
is the softmax over the logits of the two label tokens, so the answer is always one of the
two labels and its confidence is a real probability. Reasoning is generated only on request,
greedily and bounded, after the label is fixed and forced into the prompt, so it cannot
contradict it.

A saved folder holds ``polarity.json`` (backend ``causal_lm``), the tokenizer and either an
``adapter/`` over the base model the card names or full weights (``polarity export --merge``).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from polarity.backends.base_models import peft_quietly, quiet_loading, resolve_base
from polarity.contract import LoadOptions, ModelInfo, Scored
from polarity.modelcard import ModelCard
from polarity.prompt import (
    REASONING_PREFIX,
    PromptPieces,
    prompt_pieces,
    scoring_ids,
    scoring_ids_batch,
    tokens_read,
)
from polarity.registry import ADAPTER_DIR

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_base_lm(base: Path | str, dtype: str = "bfloat16"):
    """A causal LM from a folder, a hub id or a ``.gguf`` file (dequantised on load)."""
    from transformers import AutoModelForCausalLM

    base = str(base)
    with quiet_loading():
        if base.endswith(".gguf"):
            path = Path(base)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                         dtype=DTYPES[dtype])
        else:
            model = AutoModelForCausalLM.from_pretrained(base, dtype=DTYPES[dtype])
    model.get_output_embeddings().register_forward_pre_hook(_contiguous_input)
    return model


def _contiguous_input(module, args):
    # With logits_to_keep the head gets a slice of the hidden states, which is not
    # contiguous in a batch of several rows; torch.matmul then broadcasts the 151,936 x 1,536
    # vocabulary matrix over the batch and copies it once per row (15 s of a 24 s training
    # step of the 1.5B model at batch 8 on two cores).
    return (args[0].contiguous(), *args[1:])


def load_lm_tokenizer(source: Path | str):
    """The tokenizer, with pad = EOS when it has no pad token (Qwen's convention)."""
    from transformers import AutoTokenizer

    source = str(source)
    if source.endswith(".gguf"):
        path = Path(source)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    else:
        tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def lm_tokenizer_for(folder: Path | None, card: ModelCard):
    """A causal LM folder's own tokenizer when it saved one, else its base model's."""
    if folder is not None and (folder / "tokenizer_config.json").is_file():
        return load_lm_tokenizer(folder)
    return load_lm_tokenizer(resolve_base(card.base_model, folder))


def pad_left(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        mask[i, width - len(row):] = 1
    return ids, mask


def cache_argument(model) -> str:
    """transformers 5 renamed ``past_key_values`` to ``cache``; use whichever the model takes."""
    forward = getattr(model, "get_base_model", lambda: model)().forward
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def head_cache(model, head: list[int], argument: str):
    """The KV cache of ``head`` (one row). Under autograd its keys and values keep their
    graph, so a training step that expands them over a batch back-propagates into the
    adapter through the head once, not once per row."""
    from transformers import DynamicCache

    cache = DynamicCache()
    model(input_ids=torch.tensor([head], device=model.device), use_cache=True,
          logits_to_keep=1, **{argument: cache})
    return cache


def after_head(rows: list[list[int]], head_length: int, pad_id: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids, attention mask, position ids)`` for rows whose first ``head_length`` tokens
    are a shared head held in a KV cache: the rows' own tokens, padded on the left between
    the head and the text, and positions that continue the head's as if nothing were padded."""
    ids, mask = pad_left([row[head_length:] for row in rows], pad_id)
    position = head_length + (mask.cumsum(-1) - 1).clamp(min=0)
    full_mask = torch.cat([torch.ones((len(rows), head_length), dtype=mask.dtype), mask], dim=1)
    return ids, full_mask, position


class PrefixCache:
    """KV cache of the prompt's shared head (system turn and the user prefix), computed once.

    Texts then only run their own tokens (:func:`after_head`).
    """

    def __init__(self, model, head: list[int]):
        self.length = len(head)
        self.argument = cache_argument(model)
        with torch.inference_mode():
            self.cache = head_cache(model, head, self.argument)

    def expand(self, batch: int):
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(batch)
        return cache


@torch.inference_mode()
def label_logits(model, tokenizer, pieces: PromptPieces, texts: Sequence[str], max_length: int,
                 batch_size: int = 16, prefix: PrefixCache | None = None) -> torch.Tensor:
    """``[n, 2]`` logits of the NEGATIVE and POSITIVE tokens after ``Sentiment:``."""
    rows = scoring_ids_batch(tokenizer, pieces, list(texts), max_length)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = torch.zeros((len(rows), 2))
    label_ids = torch.tensor(pieces.label_ids)
    device = model.device
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        if prefix is None:
            ids, mask = pad_left([rows[i] for i in idx], tokenizer.pad_token_id)
            position = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                           position_ids=position.to(device), logits_to_keep=1).logits
        else:
            ids, full_mask, position = after_head([rows[i] for i in idx], prefix.length,
                                                  tokenizer.pad_token_id)
            logits = model(input_ids=ids.to(device), attention_mask=full_mask.to(device),
                           position_ids=position.to(device), use_cache=True,
                           logits_to_keep=1, **{prefix.argument: prefix.expand(len(idx))}
                           ).logits
        out[idx] = logits[:, -1, :].float().cpu()[:, label_ids]
    return out


@torch.inference_mode()
def generate_after(model, tokenizer, prompts: list[list[int]], max_new_tokens: int,
                   stop_id: int) -> list[list[int]]:
    """Greedy continuation of each prompt: at most ``max_new_tokens`` new token ids, cut at
    ``stop_id``."""
    ids, mask = pad_left(prompts, tokenizer.pad_token_id)
    out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                         max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stop_id,
                         pad_token_id=tokenizer.pad_token_id)
    rows = []
    for row in out[:, ids.shape[1]:].tolist():
        rows.append(row[:row.index(stop_id)] if stop_id in row else row)
    return rows


def decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True).strip()


class CausalLMBackend:
    """The causal LM tier on PyTorch: label scoring, reasoning on request."""

    def __init__(self, model, tokenizer, card: ModelCard, path: Path | None = None,
                 prefix_cache: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.card = card
        self.pieces = prompt_pieces(tokenizer)
        self.prefix = PrefixCache(model, self.pieces.head) if prefix_cache else None
        self.max_new_tokens = int(card.extra.get("max_new_tokens", 64))
        self.info = ModelInfo(card.name, "causal_lm", card.version, str(path) if path else None,
                              reference=card.drift_reference, runtime="torch")

    def score(self, texts: Sequence[str], batch_size: int = 16) -> Scored:
        logits = label_logits(self.model, self.tokenizer, self.pieces, texts,
                              self.card.max_length, batch_size, self.prefix)
        return Scored((logits[:, 1] - logits[:, 0]).double().tolist())

    def work(self, texts: Sequence[str]) -> list[int]:
        return tokens_read(self.tokenizer, texts, self.card.max_length)

    def reasoning_ids(self, texts: Sequence[str], labels: Sequence[str], batch_size: int = 16,
                      max_new_tokens: int | None = None) -> list[list[int]]:
        """Greedy reasoning tokens after ``Sentiment: LABEL\\nReasoning:``, bounded."""
        tok = self.tokenizer
        prompts = [scoring_ids(tok, self.pieces, t, self.card.max_length)
                   + tok(f" {label}{REASONING_PREFIX}", add_special_tokens=False)["input_ids"]
                   for t, label in zip(texts, labels, strict=True)]
        out: list[list[int]] = []
        # The base model writes the reason: after LoRA on labels alone the adapter's own
        # continuations degenerate (docs/qwen.md), and the label is already fixed above.
        with without_adapter(self.model):
            for start in range(0, len(prompts), batch_size):
                out += generate_after(self.model, tok, prompts[start:start + batch_size],
                                      max_new_tokens or self.max_new_tokens,
                                      self.pieces.end_of_turn)
        return out

    def explain(self, texts: Sequence[str], labels: Sequence[str], batch_size: int = 16,
                scored: Scored | None = None, max_new_tokens: int | None = None) -> list[str]:
        return [decode(self.tokenizer, ids) for ids in
                self.reasoning_ids(texts, labels, batch_size, max_new_tokens)]


def inference_dtype(card: ModelCard, device: str, chosen: str | None = None) -> str:
    """``chosen`` if given; float32 on CPUs, where bf16 matmuls without native support are
    emulated (6.5x slower than float32 on this project's 2-core AVX2 machine); otherwise the
    card's dtype."""
    if chosen:
        if chosen not in DTYPES:
            from polarity.errors import InputError

            raise InputError(f"dtype {chosen!r}; choose one of {', '.join(DTYPES)}")
        return chosen
    return "float32" if device == "cpu" else card.extra.get("dtype", "bfloat16")


def load_causal_lm_model(folder: Path | None, card: ModelCard, dtype: str = "float32",
                         keep_adapter: bool = False):
    """Base + adapter, merged for inference, in ``dtype``. ``keep_adapter`` keeps the peft
    wrapper (merged all the same) so that the base model can still be run without it."""
    if folder is not None and (folder / "config.json").is_file():
        return load_base_lm(folder, dtype)  # an exported, merged model
    model = load_base_lm(resolve_base(card.base_model, folder), dtype)
    if folder is not None and (folder / ADAPTER_DIR).is_dir():
        from peft import PeftModel

        with peft_quietly():
            model = PeftModel.from_pretrained(model, str(folder / ADAPTER_DIR))
        if not keep_adapter:
            return model.merge_and_unload()
        model.merge_adapter()
    return model


@contextmanager
def without_adapter(model) -> Iterator[None]:
    """Run the base model: LoRA layers unmerge themselves while disabled, and are merged
    again afterwards. A model without an adapter runs as it is."""
    if not hasattr(model, "disable_adapter"):
        yield
        return
    try:
        with model.disable_adapter():
            yield
    finally:
        model.merge_adapter()


#: Tokens of a text the causal LM reads at inference (its cards' ``max_length``): a long text
#: is read whole up to this, however short the rows it was tuned on.
READ_TOKENS = 2048


def zero_shot_card(base: str) -> ModelCard:
    """Metadata for a plain instruction-tuned model used without an adapter."""
    dtype = "bfloat16"
    config = Path(base) / "config.json"
    if config.is_file():
        dtype = json.loads(config.read_text()).get("dtype") or "bfloat16"
    return ModelCard(name=Path(base).name or base, backend="causal_lm", base_model=base,
                     max_length=READ_TOKENS,
                     extra={"dtype": dtype if dtype in DTYPES else "bfloat16"})


def load_causal_lm_backend(folder: Path | None, card: ModelCard,
                           options: LoadOptions | None = None) -> CausalLMBackend:
    options = options or LoadOptions()
    if options.threads:
        torch.set_num_threads(options.threads)
    started = time.perf_counter()
    device = options.device or "cpu"
    model = load_causal_lm_model(folder, card, inference_dtype(card, device, options.dtype),
                                 keep_adapter=True).to(device)
    backend = CausalLMBackend(model, lm_tokenizer_for(folder, card), card, folder,
                              prefix_cache=card.extra.get("prefix_cache", True))
    backend.info = dataclasses.replace(backend.info,
                                       dtype=str(model.dtype).removeprefix("torch."),
                                       threads=torch.get_num_threads())
    backend.load_seconds = time.perf_counter() - started
    return backend
