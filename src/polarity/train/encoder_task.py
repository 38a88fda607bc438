"""Training task for the encoder tier: cross-entropy over the two labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from polarity.backends.base_models import (
    load_adapter_weights,
    peft_quietly,
    portable_ref,
    resolve_base,
)
from polarity.backends.encoder import (
    ADAPTER_DIR,
    ENCODER_FILE,
    HEAD_FILE,
    build_for_training,
    load_base_encoder,
    load_tokenizer,
    load_tuned_encoder,
    save_encoder,
)
from polarity.backends.exit_heads import all_logits
from polarity.backends.windows import window_log_odds
from polarity.errors import InputError
from polarity.labels import LABELS
from polarity.modelcard import ModelCard
from polarity.preprocess import apply_all
from polarity.train.config import TrainConfig
from polarity.train.distributed import World, init_world


class EncoderTask:
    def __init__(self, config: TrainConfig, world: World | None = None):
        self.config = config
        base = resolve_base(config.base_model)
        self.tokenizer = load_tokenizer(base)
        self.model = build_for_training(base, config.lora.r, config.lora.alpha,
                                        config.lora.dropout, config.lora.target_modules,
                                        config.head_dropout, config.method,
                                        config.frozen_layers, config.exit_layers)
        if config.init_from:
            warm_start(self.model, Path(config.init_from), base)
        self.world = world or init_world()
        self.device = self.world.device
        self.model.to(self.device)

    def _encode(self, rows: list[dict]):
        texts = apply_all([r["text"] for r in rows], self.config.preprocessing_steps)
        return self.tokenizer(texts, padding=True, truncation=True,
                              max_length=self.config.max_length, return_tensors="pt")

    def batch_loss(self, rows: list[dict]) -> torch.Tensor:
        enc = self._encode(rows)
        labels = torch.tensor([LABELS.index(r["label"]) if r["label"] else -100 for r in rows],
                              device=self.device)
        ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
        exits: dict = {}
        if len(self.model.exits):
            logits, exits = all_logits(self.model, ids, mask)
        else:
            logits = self.model(ids, mask)
        teacher = None
        if self.config.teacher_column is None:
            loss = F.cross_entropy(logits, labels)
        else:
            # A row of a gold source (teacher None) is taught by its label alone; its label
            # stands in as the target that its exits learn.
            taught = torch.tensor([r["teacher"] is not None for r in rows], device=self.device)
            teacher = torch.tensor([float(r["label"] == LABELS[1]) if r["teacher"] is None
                                    else r["teacher"] for r in rows], device=self.device)
            w = torch.where(taught, self.config.distill_weight, 0.0)
            soft = distillation_loss(logits, teacher, self.config.distill_temperature,
                                     reduction="none")
            hard = F.cross_entropy(logits, labels, ignore_index=-100, reduction="none")
            # A row without a label (an augmented text) learns from the teacher alone.
            loss = torch.where(labels >= 0, (1 - w) * hard + w * soft, soft).mean()
        if not exits:
            return loss
        # Exits learn what the model as a whole should answer: the teacher, else the final
        # head (detached: an exit must not pull the final answer towards its own).
        target = teacher if teacher is not None else torch.softmax(logits.detach(), -1)[:, 1]
        t = self.config.distill_temperature if teacher is not None else 1.0
        exit_loss = torch.stack([distillation_loss(z, target, t) for z in exits.values()])
        return loss + self.config.exit_weight * exit_loss.mean()

    @torch.inference_mode()
    def evaluate(self, rows: list[dict], batch_size: int) -> dict[str, float]:
        """Accuracy and two-way NLL as the shipped scorer reads the texts: preprocessed, and
        a text longer than one window read in pieces (:mod:`polarity.backends.windows`), so
        the best checkpoint is the best model as users get it."""
        def run(ids, mask):
            return self.model(torch.from_numpy(ids).to(self.device),
                              torch.from_numpy(mask).to(self.device)).float().cpu().numpy()

        texts = apply_all([r["text"] for r in rows], self.config.preprocessing_steps)
        z, _, _ = window_log_odds(self.tokenizer, texts, self.config.max_length, batch_size, run)
        positive = np.asarray([r["label"] == LABELS[1] for r in rows])
        # -log P(gold) for two labels: softplus of the log-odds against the gold label
        nll = np.logaddexp(0.0, np.where(positive, -z, z))
        return {"accuracy": float(((z >= 0) == positive).mean()), "loss": float(nll.mean())}

    def save_model(self, folder: Path, metrics: dict, training: dict) -> None:
        c = self.config
        card = ModelCard(
            name=c.name, version=c.version, backend="encoder",
            base_model=portable_ref(c.base_model),
            max_length=c.max_length, preprocessing=c.preprocessing_steps, pooling="mean",
            lora={"r": c.lora.r, "alpha": c.lora.alpha, "dropout": c.lora.dropout}
            if c.method == "lora" else {},
            training=training, metrics={"validation": metrics},
            extra={"exits": {"layers": c.exit_layers}} if c.exit_layers else {},
        )
        save_encoder(self.model, Path(folder), card)


def distillation_loss(logits: torch.Tensor, p_teacher: torch.Tensor, temperature: float,
                      reduction: str = "mean") -> torch.Tensor:
    """Hinton et al.'s soft-target term for two labels: cross-entropy between the teacher's
    and the student's probabilities, both softened by ``temperature`` (T) in log-odds, times
    T^2 so that its gradients keep their size as T changes."""
    p = p_teacher.clamp(1e-6, 1 - 1e-6)
    soft_positive = torch.sigmoid(torch.log(p / (1 - p)) / temperature)
    target = torch.stack([1 - soft_positive, soft_positive], dim=-1)
    student = F.log_softmax(logits / temperature, dim=-1)
    per_row = -(target * student).sum(-1) * temperature ** 2
    return per_row.mean() if reduction == "mean" else per_row


def warm_start(model, folder: Path, base: Path | str) -> None:
    """Load a saved model's adapter (or tuned encoder tensors) and head into a freshly built
    training model. A model to be fully fine-tuned may start from a LoRA model: the adapter
    is merged into its weights first."""
    from safetensors.torch import load_file

    if not (folder / HEAD_FILE).is_file():
        raise InputError(f"init_from {folder} has no adapter and head to start from")
    lora = hasattr(model.encoder, "peft_config")
    saved_lora = (folder / ADAPTER_DIR).is_dir()
    if lora and not saved_lora:
        raise InputError(f"init_from {folder} was trained with method full; a LoRA model "
                         "cannot start from it (use method: full)")
    if lora:
        load_adapter_weights(model.encoder, folder / ADAPTER_DIR)
    elif saved_lora:
        from peft import PeftModel

        with peft_quietly():
            merged = PeftModel.from_pretrained(load_base_encoder(base),
                                               str(folder / ADAPTER_DIR))
        model.encoder.load_state_dict(merged.merge_and_unload().state_dict())
    else:
        load_tuned_encoder(model.encoder, folder / ENCODER_FILE)
    model.head.load_state_dict(load_file(str(folder / HEAD_FILE)))
