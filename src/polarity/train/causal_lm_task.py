"""Training task for the Qwen2 tier: next-token loss on the answer only (the prompt is masked).

The saved folder holds the adapter, the tokenizer and ``polarity.json``; the base weights are
referenced, not copied.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from polarity.backends.base_models import (
    load_adapter_weights,
    peft_quietly,
    portable_ref,
    resolve_base,
    save_adapter,
)
from polarity.backends.causal_lm import (
    ADAPTER_DIR,
    LORA_TARGETS,
    READ_TOKENS,
    PrefixCache,
    after_head,
    cache_argument,
    head_cache,
    label_logits,
    load_base_lm,
    load_lm_tokenizer,
    pad_left,
)
from polarity.labels import LABELS
from polarity.modelcard import ModelCard
from polarity.prompt import PROMPT_VERSION, prompt_pieces, training_example
from polarity.train.config import TrainConfig
from polarity.train.distributed import World, init_world


class CausalLMTask:
    def __init__(self, config: TrainConfig, world: World | None = None):
        from peft import LoraConfig, get_peft_model

        self.config = config
        base = resolve_base(config.base_model)
        self.tokenizer = load_lm_tokenizer(base)
        self.pieces = prompt_pieces(self.tokenizer)
        # get_peft_model wraps the base in place; this task owns its own freshly loaded copy.
        model = load_base_lm(base, config.dtype)
        model.config.use_cache = False
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha,
                          lora_dropout=config.lora.dropout, bias="none", task_type="CAUSAL_LM",
                          target_modules=config.lora.target_modules or LORA_TARGETS)
        with peft_quietly():
            self.model = get_peft_model(model, lora)
        if config.init_from:
            load_adapter_weights(self.model, Path(config.init_from) / ADAPTER_DIR)
        self.world = world or init_world()
        self.model.to(self.world.device)
        # Gradient checkpointing recomputes each layer without a cache, so it runs every
        # row's head itself.
        self.shared_head = config.shared_head and not config.gradient_checkpointing
        self.cache_argument = cache_argument(self.model)

    def batch_loss(self, rows: list[dict]) -> torch.Tensor:
        """Mean next-token loss over the answer tokens.

        Rows are padded on the left so that every answer ends at the last position; the
        vocabulary projection then runs only over the answer span (``logits_to_keep``),
        not over every prompt token, which for a 152k vocabulary is a large saving. With
        ``shared_head`` the prompt's head (the same tokens in every row) runs once per batch
        and its keys and values, still in the autograd graph, are expanded over the rows.
        """
        examples = [training_example(self.tokenizer, self.pieces, r["text"], r["label"],
                                     self.config.max_length, r.get("reasoning"))
                    for r in rows]
        answer = max(sum(1 for t in y if t != -100) for _, y in examples)
        # Every row is longer than its answer (a prompt precedes it), so its last
        # ``answer`` labels hold the whole answer, left-filled with -100.
        targets = torch.tensor([y[-answer:] for _, y in examples])
        pad, device = self.tokenizer.pad_token_id, self.world.device
        inputs = [x for x, _ in examples]
        if self.shared_head:
            ids, mask, position = after_head(inputs, len(self.pieces.head), pad)
            cache = head_cache(self.model, self.pieces.head, self.cache_argument)
            cache.batch_repeat_interleave(len(rows))
            extra = {"use_cache": True, self.cache_argument: cache}
        else:
            ids, mask = pad_left(inputs, pad)
            position = (mask.cumsum(-1) - 1).clamp(min=0)
            extra = {}
        logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device),
                            position_ids=position.to(device), logits_to_keep=answer + 1,
                            **extra).logits
        return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                               targets.reshape(-1).to(device), ignore_index=-100)

    @torch.inference_mode()
    def evaluate(self, rows: list[dict], batch_size: int) -> dict[str, float]:
        """Label-scoring accuracy and two-way NLL, exactly as the predictor scores (the head's
        cache is taken anew: the adapter has changed it)."""
        logits = label_logits(self.model, self.tokenizer, self.pieces, [r["text"] for r in rows],
                              self.config.max_length, batch_size,
                              PrefixCache(self.model, self.pieces.head))
        labels = torch.tensor([LABELS.index(r["label"]) for r in rows])
        return {"accuracy": (logits.argmax(-1) == labels).float().mean().item(),
                "loss": F.cross_entropy(logits, labels).item()}

    def save_model(self, folder: Path, metrics: dict, training: dict) -> None:
        c = self.config
        folder = Path(folder)
        base = portable_ref(c.base_model)
        save_adapter(self.model, folder / ADAPTER_DIR, base)
        self.tokenizer.save_pretrained(str(folder))
        ModelCard(
            name=c.name, version=c.version, backend="causal_lm",
            base_model=base, max_length=max(c.max_length, READ_TOKENS),
            lora={"r": c.lora.r, "alpha": c.lora.alpha, "dropout": c.lora.dropout,
                  "target_modules": c.lora.target_modules or LORA_TARGETS},
            training=training, metrics={"validation": metrics},
            extra={"dtype": c.dtype, "prompt_version": PROMPT_VERSION,
                   "label_token_ids": list(self.pieces.label_ids)},
        ).save(folder)
