"""The fast tier: a sentence encoder (all-MiniLM-L6-v2 by default, or all-mpnet-base-v2) with
LoRA adapters or tuned weights, mean pooling and a linear head.

A saved folder holds ``adapter/`` (peft) or ``encoder.safetensors`` (the encoder tensors that
training changed, for a fully tuned encoder), ``head.safetensors`` and ``polarity.json``; the
tokenizer and the unchanged weights come from the base model the card names.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from polarity.backends.base_models import (
    peft_quietly,
    quiet_loading,
    resolve_base,
    save_adapter,
)
from polarity.backends.exit_heads import exit_heads, pool, torch_stage_runner
from polarity.backends.exits import EXITS_FILE, ExitPlan, cascade
from polarity.backends.long_texts import load_reader
from polarity.backends.windows import score_texts, text_tokens
from polarity.contract import LoadOptions, ModelInfo, Scored
from polarity.errors import InputError
from polarity.modelcard import ModelCard
from polarity.registry import ADAPTER_DIR, ENCODER_FILE, HEAD_FILE

#: Every attention and feed-forward projection, by architecture.
LORA_TARGETS = {"bert": ["query", "key", "value", "dense"],
                "mpnet": ["q", "k", "v", "o", "dense"]}


class EncoderClassifier(nn.Module):
    """Encoder -> masked mean pooling -> dropout -> linear head over the two labels, and
    optionally early-exit heads after intermediate layers (:mod:`polarity.backends.exits`)."""

    def __init__(self, encoder: nn.Module, hidden_size: int, dropout: float = 0.1,
                 exit_layers: list[int] | None = None):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, 2)
        self.exits = exit_heads(exit_layers or [], hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask
                              ).last_hidden_state
        return self.head(self.dropout(pool(states, attention_mask)))


def load_base_encoder(base: Path | str) -> nn.Module:
    from transformers import AutoModel

    # The base checkpoint carries a pooler we do not use; its load report is noise.
    with quiet_loading():
        try:
            return AutoModel.from_pretrained(str(base), add_pooling_layer=False)
        except TypeError:  # architectures without a pooler take no such argument
            return AutoModel.from_pretrained(str(base))


def load_tokenizer(base: Path | str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base))


def build_for_training(base: Path | str, r: int, alpha: int, dropout: float,
                       targets: list[str] | None = None, head_dropout: float = 0.1,
                       method: str = "lora", frozen_layers: int = 0,
                       exit_layers: list[int] | None = None) -> EncoderClassifier:
    """Base encoder with fresh LoRA adapters (``lora``: only they and the head train), or
    with its own weights trainable (``full``) above the ``frozen_layers`` lowest layers;
    plus early-exit heads after ``exit_layers``."""
    encoder = load_base_encoder(base)
    hidden = encoder.config.hidden_size
    depth = encoder.config.num_hidden_layers
    if any(not 0 < k < depth for k in exit_layers or []):
        raise InputError(f"exit_layers {exit_layers}: exits go after layers 1 to {depth - 1} "
                         f"of this {depth}-layer encoder")
    if method == "full":
        freeze_bottom(encoder, frozen_layers)
        return EncoderClassifier(encoder, hidden, head_dropout, exit_layers)
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none",
                      target_modules=targets or lora_targets(encoder))
    with peft_quietly():
        adapted = get_peft_model(encoder, lora)
    return EncoderClassifier(adapted, hidden, head_dropout, exit_layers)


def lora_targets(encoder: nn.Module) -> list[str]:
    """The architecture's projections; for one we do not know, every linear layer."""
    known = LORA_TARGETS.get(encoder.config.model_type)
    if known:
        return known
    return sorted({name.rsplit(".", 1)[-1] for name, module in encoder.named_modules()
                   if isinstance(module, nn.Linear)})


def freeze_bottom(encoder: nn.Module, layers: int) -> None:
    """Freeze the embeddings and the lowest ``layers`` transformer layers (and any weights
    shared across layers): their backward pass is then skipped, which is what makes a large
    encoder trainable on a CPU."""
    if layers <= 0:
        return
    blocks = encoder.encoder.layer
    if layers > len(blocks):
        raise InputError(f"frozen_layers {layers}: the encoder has {len(blocks)} layers")
    keep = {id(p) for block in blocks[layers:] for p in block.parameters()}
    for param in encoder.parameters():
        if id(param) not in keep:
            param.requires_grad_(False)


def save_encoder(model: EncoderClassifier, folder: Path, card: ModelCard) -> None:
    """Write adapter (or the tuned encoder tensors), head and metadata; the base weights are
    referenced, not copied."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model.encoder, "peft_config"):
        save_adapter(model.encoder, folder / ADAPTER_DIR, card.base_model)
    else:
        tuned = {k: p.detach().contiguous() for k, p in model.encoder.named_parameters()
                 if p.requires_grad}
        save_file(tuned, str(folder / ENCODER_FILE))
    save_file({k: v.detach().contiguous() for k, v in model.head.state_dict().items()},
              str(folder / HEAD_FILE))
    if len(model.exits):
        save_file({k: v.detach().contiguous() for k, v in model.exits.state_dict().items()},
                  str(folder / EXITS_FILE))
    card.save(folder)


def load_tuned_encoder(encoder: nn.Module, path: Path) -> None:
    """Load ``encoder.safetensors`` (the tensors training changed) over the base weights."""
    from safetensors.torch import load_file

    result = encoder.load_state_dict(load_file(str(path)), strict=False)
    if result.unexpected_keys:
        raise InputError(f"{path} does not fit the base model (unexpected tensors, first: "
                         f"{result.unexpected_keys[0]})")


def load_encoder_model(folder: Path, card: ModelCard) -> EncoderClassifier:
    """Base + adapter merged into plain weights (faster inference), or base + tuned tensors,
    + head, in eval mode."""
    from peft import PeftModel
    from safetensors.torch import load_file

    base = resolve_base(card.base_model, folder)
    encoder = load_base_encoder(base)
    if (folder / ADAPTER_DIR).is_dir():
        with peft_quietly():
            adapted = PeftModel.from_pretrained(encoder, str(folder / ADAPTER_DIR))
        encoder = adapted.merge_and_unload()
    elif (folder / ENCODER_FILE).is_file():
        load_tuned_encoder(encoder, folder / ENCODER_FILE)
    plan = ExitPlan.from_card(card)
    model = EncoderClassifier(encoder, encoder.config.hidden_size,
                              exit_layers=plan.layers if plan else None)
    model.head.load_state_dict(load_file(str(folder / HEAD_FILE)))
    if plan:
        model.exits.load_state_dict(load_file(str(folder / EXITS_FILE)))
    return model.eval()


class EncoderBackend:
    """The encoder on PyTorch: an :class:`EncoderClassifier`; batches sorted by length."""

    def __init__(self, model: EncoderClassifier, tokenizer, card: ModelCard,
                 device: str = "cpu", path: Path | None = None):
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.card = card
        self.plan = ExitPlan.from_card(card)
        self.long_reader = load_reader(path, card) if path else None
        self.device = device
        self.info = ModelInfo(card.name, "encoder", card.version, str(path) if path else None,
                              "float32", torch.get_num_threads(), card.drift_reference,
                              runtime="torch")

    @torch.inference_mode()
    def _logits(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        ids = torch.from_numpy(input_ids).to(self.device)
        mask = torch.from_numpy(attention_mask).to(self.device)
        if self.plan is not None and self.plan.active and self.device == "cpu":
            return cascade(input_ids, attention_mask, torch_stage_runner(self.model, self.plan),
                           self.plan, self.card.temperature)
        return self.model(ids, mask).float().cpu().numpy()

    def score(self, texts: Sequence[str], batch_size: int = 32) -> Scored:
        return score_texts(self.tokenizer, self.card, texts, batch_size, self._logits,
                           self.long_reader)

    def work(self, texts: Sequence[str]) -> list[int]:
        return text_tokens(self.tokenizer, self.card, texts)


def load_encoder_backend(folder: Path, card: ModelCard, options: LoadOptions | None = None
                         ) -> EncoderBackend:
    options = options or LoadOptions()
    if options.threads:
        torch.set_num_threads(options.threads)
    started = time.perf_counter()
    model = load_encoder_model(folder, card)
    tokenizer = load_tokenizer(resolve_base(card.base_model, folder))
    backend = EncoderBackend(model, tokenizer, card, options.device or "cpu", folder)
    backend.load_seconds = time.perf_counter() - started
    return backend
