"""The training loop shared by every tier: AdamW, warm-up + cosine, accumulation, clipping,
periodic evaluation, best-k checkpoints, early stopping and exact resume."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from polarity.data.teacher import read_teacher_file, teacher_provenance, text_key
from polarity.data.writers import read_rows
from polarity.errors import InputError
from polarity.labels import LabelError, parse_label
from polarity.train.checkpoint import (
    TrainerState,
    check_resume_config,
    latest_checkpoint,
    load_checkpoint,
    load_trainable_state,
    rotate,
    save_checkpoint,
)
from polarity.train.config import TrainConfig
from polarity.train.distributed import (
    all_sum,
    average_gradients,
    barrier,
    broadcast_flag,
    init_world,
    shard,
)
from polarity.train.seed import seed_everything


class Task(Protocol):
    """What a model tier gives the loop."""

    model: nn.Module

    def batch_loss(self, rows: list[dict]) -> torch.Tensor: ...

    def evaluate(self, rows: list[dict], batch_size: int) -> dict[str, float]: ...

    def save_model(self, folder: Path, metrics: dict, training: dict) -> None: ...


def load_labelled(path: Path, limit: int | None = None, sources: list[str] | None = None,
                  min_chars: int = 0, teacher_column: str | None = None,
                  teacher: dict[int, float] | None = None) -> tuple[list[dict], int]:
    """Rows with a usable text and label; returns (rows, number of bad rows skipped: not
    JSON, no text, or a label that is not POSITIVE/NEGATIVE).

    ``sources`` and ``min_chars`` select rows (not counted as bad): a row is kept when its
    ``source`` is listed and its text has at least ``min_chars`` characters. With
    ``teacher_column`` each row also gets ``teacher``, the teacher's P(POSITIVE), from the
    row or, with ``teacher`` (a teacher file's ``{key: probability}``), looked up by the
    text's key; a row without a usable one is bad, and a row without a label is kept
    (label None: the teacher alone teaches it).
    """
    rows, bad = [], 0
    wanted = set(sources) if sources is not None else None

    def count_bad(line: int, reason: str) -> None:
        nonlocal bad
        bad += 1

    for row in read_rows(path, on_bad=count_bad):
        if wanted is not None and row.get("source") not in wanted:
            continue
        text = row.get("text")
        try:
            label = parse_label(row.get("label"))
        except LabelError:
            if teacher_column is None or row.get("label") is not None:
                bad += 1
                continue
            label = None
        if not isinstance(text, str) or not text.strip():
            bad += 1
            continue
        if len(text) < min_chars:
            continue
        item = {"text": text, "label": label}
        if teacher_column is not None:
            value = (teacher.get(text_key(text)) if teacher is not None
                     else row.get(teacher_column))
            item["teacher"] = teacher_probability(value)
            if item["teacher"] is None:
                bad += 1
                continue
        rows.append(item)
        if limit is not None and len(rows) >= limit:
            break
    return rows, bad


def teacher_probability(value) -> float | None:
    """P(POSITIVE) from a number, or from ``polarity batch``'s ``scores`` mapping."""
    if isinstance(value, dict):
        value = value.get("POSITIVE")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def epoch_batches(rows: list[dict], batch_size: int, seed: int, group: int = 50
                  ) -> list[np.ndarray]:
    """Shuffled batches of similar-length texts (deterministic for a seed).

    Rows are shuffled, cut into chunks of ``group`` batches, sorted by length inside each
    chunk, batched, and the batches shuffled again: padding shrinks several-fold on mixed
    phrase/review data while every batch still mixes the whole data set's rows.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    chunk = batch_size * group
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: len(rows[i]["text"]))
        batches += [np.asarray(part[i:i + batch_size]) for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


#: TrainConfig.lr_scheduler -> transformers' schedule (each with linear warm-up).
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    if not decay and not no_decay:
        raise InputError("the model has no trainable parameters")
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )


def fit(task: Task, config: TrainConfig, resume: Path | str | None = None) -> dict:
    """Train ``task.model`` and save the best checkpoint as a model folder in output_dir.

    ``resume``: a checkpoint folder, or ``"last"`` for the newest one in output_dir.
    """
    world = getattr(task, "world", None) or init_world()
    out = Path(config.output_dir)
    ckpt_dir = out / "checkpoints"
    if resume is None and latest_checkpoint(ckpt_dir) is not None:
        raise InputError(f"{out} already has checkpoints: resume with "
                         "--resume-from-checkpoint last, or choose another --output-dir")
    barrier(world)  # every rank has looked before rank 0 writes the first checkpoint
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    check_resume_config(out, config, resume is not None, write=world.main)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    seed_everything(config.seed)

    if not Path(config.train_file).exists():
        raise InputError(f"training file not found: {config.train_file}. Prepared splits come "
                         "from `polarity prepare --config configs/prepare_default.yaml` (or "
                         "`make prepare-default`) for the configs in configs/; otherwise "
                         "point train_file at your JSONL or Parquet file")
    select = {"sources": config.sources, "min_chars": config.min_chars}
    teacher = (read_teacher_file(config.teacher_file, config.teacher_column)
               if config.teacher_file else None)
    rows, bad = load_labelled(config.train_file, config.max_train_rows, **select,
                              teacher_column=config.teacher_column, teacher=teacher)
    if config.sample_train_rows and config.sample_train_rows < len(rows):
        keep = np.random.default_rng(config.seed).choice(len(rows), config.sample_train_rows,
                                                         replace=False)
        rows = [rows[i] for i in sorted(keep)]
    if not rows:
        raise InputError(f"{config.train_file} has no usable rows (text + POSITIVE/NEGATIVE"
                         + (", matching sources/min_chars)" if config.sources or config.min_chars
                            else ")"))
    val_rows, val_bad = (load_labelled(config.val_file, config.max_val_rows, **select)
                         if config.val_file else ([], 0))
    per_step = config.batch_size * config.gradient_accumulation_steps
    steps_per_epoch = math.ceil(len(rows) / per_step)
    total = config.max_steps or math.ceil(config.num_epochs * steps_per_epoch)
    model = task.model
    optimizer = make_optimizer(model, config)
    from transformers import get_scheduler

    scheduler = get_scheduler(SCHEDULES[config.lr_scheduler], optimizer,
                              num_warmup_steps=int(config.warmup_ratio * total),
                              num_training_steps=total)

    state = TrainerState()
    if resume is not None:
        path = latest_checkpoint(ckpt_dir) if str(resume) == "last" else Path(resume)
        if path is None or not (path / "state.json").is_file():
            raise InputError(f"no checkpoint to resume from at {path or ckpt_dir}")
        state = load_checkpoint(path, model, optimizer, scheduler)
    if world.main and (bad or val_bad):
        print(f"polarity train: skipped {bad} bad training row(s) in {config.train_file}"
              + (f" and {val_bad} in {config.val_file}" if val_bad else "")
              + " (not JSON, no text, a label other than POSITIVE/NEGATIVE"
              + (f", or no teacher probability in {config.teacher_column!r})"
                 if config.teacher_column else ")"),
              file=sys.stderr)
    log = open(out / "train_log.jsonl", "a", encoding="utf-8") if world.main else None
    _log(log, {"event": "start", "step": state.step, "total_steps": total, "train_rows": len(rows),
               "skipped_train_rows": bad, "val_rows": len(val_rows), "skipped_val_rows": val_bad})

    model.train()
    bar = tqdm(total=total, initial=state.step, desc="train", unit="step",
               disable=not config.progress or not world.main)
    trainable = [p for p in model.parameters() if p.requires_grad]
    running, started = [], time.perf_counter()
    while state.step < total and not state.stopped_early:
        epoch, in_epoch = divmod(state.step, steps_per_epoch)
        batches = epoch_batches(rows, config.batch_size, config.seed + epoch)
        micro = in_epoch * config.gradient_accumulation_steps
        while micro < len(batches) and state.step < total and not state.stopped_early:
            group = batches[micro:micro + config.gradient_accumulation_steps]
            micro += config.gradient_accumulation_steps
            n_rows = sum(len(b) for b in group)
            loss_sum = 0.0
            for idx in group:
                idx = shard(idx, world)
                if len(idx) == 0:
                    continue
                # Weighted by rows, times the world size that the all-reduce divides by: the
                # step's gradient is the mean over every row of the global batch.
                loss = task.batch_loss([rows[i] for i in idx]) * (len(idx) / n_rows)
                (loss * world.size).backward()
                loss_sum += loss.item()
            average_gradients(trainable, world)
            loss_sum = all_sum(loss_sum, world)
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
            if _finite_step(loss_sum, grad_norm, state, config, log, group):
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            if math.isfinite(loss_sum):
                running.append(loss_sum)
            bar.update()
            bar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}")
            if state.step % 10 == 0:
                _log(log, {"event": "train", "step": state.step, "epoch": round(
                    state.step / steps_per_epoch, 3), "loss": float(np.mean(running[-10:])),
                    "lr": scheduler.get_last_lr()[0], "grad_norm": float(grad_norm)})
            if state.step % config.eval_steps == 0 or state.step == total:
                if world.main:
                    _evaluate_and_save(task, config, val_rows, state, optimizer, scheduler, log)
                state.stopped_early = broadcast_flag(state.stopped_early, world)
                model.train()
    bar.close()
    if not world.main:  # rank 0 alone restores the best checkpoint and saves the model
        barrier(world)
        return {}

    if state.best and state.best[0]["metric"] == -math.inf:
        raise InputError(f"no checkpoint of {out} has a finite validation loss: nothing worth "
                         "saving (see train_log.jsonl); lower learning_rate or check the data")
    if state.best:
        best = ckpt_dir / state.best[0]["name"]
        load_trainable_state(model, load_file(str(best / "trainable.safetensors")))
    metrics = {"best_step": state.best[0]["step"] if state.best else state.step,
               **(state.best[0]["metrics"] if state.best else {})}
    training = {"command": getattr(task, "command", None), "data": _provenance(config),
                "config": json.loads(config.model_dump_json()), "train_rows": len(rows),
                "steps": state.step, "stopped_early": state.stopped_early,
                "skipped_steps": state.skipped_steps,
                "seconds_this_run": round(time.perf_counter() - started, 1)}
    training["processes"] = world.size
    model.eval()
    task.save_model(out, metrics, training)
    _log(log, {"event": "done", "step": state.step, **metrics})
    log.close()
    barrier(world)
    return metrics


def _finite_step(loss: float, grad_norm: torch.Tensor, state, config, log, group) -> bool:
    """Whether the step's update may be applied. A non-finite loss or gradient norm would
    turn every weight into NaN for good (one such step did, 45 steps into a Qwen2 run on a
    GPU): the update is skipped and counted, and ``max_bad_steps`` in a row stop the run."""
    if math.isfinite(loss) and bool(torch.isfinite(grad_norm)):
        state.bad_in_a_row = 0
        return True
    state.skipped_steps += 1
    state.bad_in_a_row += 1
    # The rows (0-based, among the usable training rows) name the batch that did it.
    _log(log, {"event": "skipped", "step": state.step + 1, "loss": loss,
               "grad_norm": float(grad_norm), "skipped_steps": state.skipped_steps,
               "rows": sorted(int(i) for idx in group for i in idx)})
    if state.bad_in_a_row >= config.max_bad_steps:
        raise InputError(f"training diverged: {state.bad_in_a_row} steps in a row up to step "
                         f"{state.step + 1} had a non-finite loss or gradient norm (loss "
                         f"{loss}); lower learning_rate, check the data, or train in float32 "
                         "(dtype); the checkpoints so far are intact")
    return False


def _evaluate_and_save(task, config, val_rows, state, optimizer, scheduler, log) -> None:
    model = task.model
    model.eval()
    metrics = task.evaluate(val_rows, config.eval_batch_size) if val_rows else {}
    # Without validation data the newest checkpoint counts as the best one; a model whose
    # validation loss is not finite scores NaN and can never be the best.
    metric = metrics.get(config.metric_for_best, float(state.step))
    if config.metric_for_best == "loss" and val_rows:
        metric = -metric  # ranked higher-is-better throughout
    if not all(math.isfinite(v) for v in metrics.values()):
        metric = -math.inf
    _log(log, {"event": "eval", "step": state.step, **metrics})
    improved = not state.best or metric > state.best[0]["metric"]
    state.evals_without_improvement = 0 if improved else state.evals_without_improvement + 1
    if (config.early_stopping_patience is not None and val_rows
            and state.evals_without_improvement >= config.early_stopping_patience):
        state.stopped_early = True
    name = f"step-{state.step:07d}"
    state.best.append({"name": name, "step": state.step, "metric": metric, "metrics": metrics})
    state.best.sort(key=lambda b: (-b["metric"], b["step"]))
    state.best = state.best[:config.save_total_limit]
    ckpt_dir = Path(config.output_dir) / "checkpoints"
    save_checkpoint(ckpt_dir, model, optimizer, scheduler, state)
    rotate(ckpt_dir, state, config.save_total_limit)


def _provenance(config: TrainConfig) -> dict:
    """Which files trained the model, with prepare's source counts when they are known and,
    for a ``polarity batch`` output, the model that scored it (the teacher)."""
    info: dict = {"train_file": str(config.train_file), "val_file": str(config.val_file)}
    if config.teacher_file:
        info["teacher"] = {"file": str(config.teacher_file),
                           **teacher_provenance(config.teacher_file)}
    manifest = Path(config.train_file) / "_batch.json"
    if manifest.is_file():
        batch = json.loads(manifest.read_text())
        info["scored_by"] = {"model": batch.get("model"), "input": batch.get("input")}
        stats = Path(batch.get("input", "")).parent / "stats.json"
    else:
        stats = Path(config.train_file).parent / "stats.json"
    if stats.is_file():
        recorded = json.loads(stats.read_text())
        info["prepare"] = {"sources": recorded.get("config", {}).get("sources"),
                           "rows": recorded.get("sources"), "splits": recorded.get("splits")}
    return info


def _log(f, record: dict) -> None:
    if f is None:  # not the main rank
        return
    f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")
    f.flush()
