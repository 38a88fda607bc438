"""One training run as one object (torchtune's recipe shape): it owns the task's model, the
optimizer, the scheduler, the process world, the run's state and its log, and goes
``setup`` -> ``train`` -> ``save``. Shared by every tier: AdamW, warm-up then cosine, linear
or constant decay, accumulation, clipping, NaN-guarded steps, periodic evaluation, best-k
checkpoints, early stopping and exact resume."""

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

from polarity.errors import InputError
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
from polarity.train.data import epoch_batches, training_rows
from polarity.train.distributed import (
    World,
    all_sum,
    average_gradients,
    barrier,
    broadcast_flag,
    finish,
    init_world,
    shard,
)
from polarity.train.provenance import describe_data
from polarity.train.seed import seed_everything

#: TrainConfig.lr_scheduler -> transformers' schedule (each with linear warm-up).
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


class Task(Protocol):
    """What a model tier gives the recipe."""

    model: nn.Module

    def batch_loss(self, rows: list[dict]) -> torch.Tensor: ...

    def evaluate(self, rows: list[dict], batch_size: int) -> dict[str, float]: ...

    def save_model(self, folder: Path, metrics: dict, training: dict) -> None: ...


def build_task(config: TrainConfig, world: World | None = None) -> Task:
    """The configured tier's training task (:data:`polarity.registry.BACKENDS`), built in a
    process whose threads and seed are the config's (the adapter's initialisation draws
    from the seed)."""
    from polarity.registry import BACKENDS, resolve

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    seed_everything(config.seed)
    return resolve(BACKENDS[config.backend].task)(config, world or init_world())


class Recipe:
    """One run: ``Recipe.for_config(config, command).run(resume)`` (``fit`` for a task built
    by hand, as tests do)."""

    def __init__(self, task: Task, config: TrainConfig, command: str | None = None):
        self.task, self.config, self.command = task, config, command
        self.world = task.world
        self.out = Path(config.output_dir)
        self.checkpoints = self.out / "checkpoints"
        self.state = TrainerState()
        self.log = None

    @classmethod
    def for_config(cls, config: TrainConfig, command: str | None = None) -> Recipe:
        return cls(build_task(config), config, command)

    def run(self, resume: Path | str | None = None) -> dict:
        """setup -> train -> save; returns the saved model's validation metrics."""
        try:
            self.setup(resume)
            self.train()
            return self.save()
        finally:
            finish(self.world)

    def setup(self, resume: Path | str | None = None) -> Recipe:
        """Check the output folder, read the data, build optimizer and schedule, and restore
        the state of ``resume`` (a checkpoint folder, or ``"last"``)."""
        config, world = self.config, self.world
        if resume is None and latest_checkpoint(self.checkpoints) is not None:
            raise InputError(f"{self.out} already has checkpoints: resume with "
                             "--resume-from-checkpoint last, or choose another --output-dir")
        barrier(world)  # every rank has looked before rank 0 writes the first checkpoint
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        check_resume_config(self.out, config, resume is not None, write=world.main)
        # Data order and dropout are seeded anew once the model is built, so that they do not
        # depend on how many random numbers its initialisation drew.
        seed_everything(config.seed)
        self.rows, bad, self.val_rows, val_bad = training_rows(config, announce=world.main)
        per_step = config.batch_size * config.gradient_accumulation_steps
        self.steps_per_epoch = math.ceil(len(self.rows) / per_step)
        self.total = config.max_steps or math.ceil(config.num_epochs * self.steps_per_epoch)
        self.optimizer = make_optimizer(self.task.model, config)
        from transformers import get_scheduler

        self.scheduler = get_scheduler(SCHEDULES[config.lr_scheduler], self.optimizer,
                                       num_warmup_steps=int(config.warmup_ratio * self.total),
                                       num_training_steps=self.total)
        if resume is not None:
            path = latest_checkpoint(self.checkpoints) if str(resume) == "last" else Path(resume)
            if path is None or not (path / "state.json").is_file():
                raise InputError(f"no checkpoint to resume from at {path or self.checkpoints}")
            self.state = load_checkpoint(path, self.task.model, self.optimizer, self.scheduler)
        if world.main:
            self.log = open(self.out / "train_log.jsonl", "a", encoding="utf-8")
        self._log({"event": "start", "step": self.state.step, "total_steps": self.total,
                   "train_rows": len(self.rows), "skipped_train_rows": bad,
                   "val_rows": len(self.val_rows), "skipped_val_rows": val_bad})
        return self

    def train(self) -> None:
        """Steps until the total, early stopping or divergence."""
        config, state, model = self.config, self.state, self.task.model
        model.train()
        bar = self.bar = tqdm(total=self.total, initial=state.step, desc="train", unit="step",
                              disable=not config.progress or not self.world.main)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.running: list[float] = []
        self.started = time.perf_counter()
        self.saved_at = time.monotonic()
        self.first_step, self.rows_seen = state.step, 0  # this run's, for speed and ETA
        while state.step < self.total and not state.stopped_early:
            epoch, in_epoch = divmod(state.step, self.steps_per_epoch)
            batches = epoch_batches(self.rows, config.batch_size, config.seed + epoch)
            micro = in_epoch * config.gradient_accumulation_steps
            while (micro < len(batches) and state.step < self.total
                   and not state.stopped_early):
                group = batches[micro:micro + config.gradient_accumulation_steps]
                micro += config.gradient_accumulation_steps
                self._step(group)
                bar.update()
                bar.set_postfix(loss=f"{np.mean(self.running[-50:]):.4f}")
                if state.step % config.eval_steps == 0 or state.step == self.total:
                    if self.world.main:
                        self._evaluate_and_checkpoint()
                    state.stopped_early = broadcast_flag(state.stopped_early, self.world)
                    model.train()
                elif self.world.main and self._checkpoint_due():
                    self._checkpoint()
        bar.close()

    def _step(self, group: list[np.ndarray]) -> None:
        """One optimizer step over ``group`` (the accumulated batches)."""
        world, state = self.world, self.state
        n_rows = sum(len(b) for b in group)
        loss_sum = 0.0
        for idx in group:
            idx = shard(idx, world)
            if len(idx) == 0:
                continue
            # Weighted by rows, times the world size that the all-reduce divides by: the
            # step's gradient is the mean over every row of the global batch.
            loss = self.task.batch_loss([self.rows[i] for i in idx]) * (len(idx) / n_rows)
            (loss * world.size).backward()
            loss_sum += loss.item()
        average_gradients(self.trainable, world)
        loss_sum = all_sum(loss_sum, world)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, self.config.max_grad_norm)
        if self._finite(loss_sum, grad_norm, group):
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        if math.isfinite(loss_sum):
            self.running.append(loss_sum)
        self.rows_seen += n_rows
        if state.step % 10 == 0:
            elapsed = time.perf_counter() - self.started
            per_step = elapsed / (state.step - self.first_step)
            self._log({"event": "train", "step": state.step, "epoch": round(
                state.step / self.steps_per_epoch, 3), "loss": float(np.mean(self.running[-10:])),
                "lr": self.scheduler.get_last_lr()[0], "grad_norm": float(grad_norm),
                "rows_per_s": round(self.rows_seen / elapsed, 3),
                "eta_s": round(per_step * (self.total - state.step))})

    def _finite(self, loss: float, grad_norm: torch.Tensor, group) -> bool:
        """Whether the step's update may be applied. A non-finite loss or gradient norm would
        turn every weight into NaN for good (one such step did, 45 steps into a Qwen2 run on
        a GPU): the update is skipped and counted, and ``max_bad_steps`` in a row stop."""
        state = self.state
        if math.isfinite(loss) and bool(torch.isfinite(grad_norm)):
            state.bad_in_a_row = 0
            return True
        state.skipped_steps += 1
        state.bad_in_a_row += 1
        # The rows (0-based, among the usable training rows) name the batch that did it.
        self._log({"event": "skipped", "step": state.step + 1, "loss": loss,
                   "grad_norm": float(grad_norm), "skipped_steps": state.skipped_steps,
                   "rows": sorted(int(i) for idx in group for i in idx)})
        if state.bad_in_a_row >= self.config.max_bad_steps:
            raise InputError(f"training diverged: {state.bad_in_a_row} steps in a row up to "
                             f"step {state.step + 1} had a non-finite loss or gradient norm "
                             f"(loss {loss}); lower learning_rate, check the data, or train in "
                             "float32 (dtype); the checkpoints so far are intact")
        return False

    def _evaluate_and_checkpoint(self) -> None:
        config, state, model = self.config, self.state, self.task.model
        model.eval()
        if self.val_rows:  # the bar would otherwise stand still for the whole evaluation
            self.bar.set_postfix_str(f"validating on {len(self.val_rows):,} rows")
        t0 = time.perf_counter()
        metrics = (self.task.evaluate(self.val_rows, config.eval_batch_size)
                   if self.val_rows else {})
        # Without validation data the newest checkpoint counts as the best one; a model
        # whose validation loss is not finite scores NaN and can never be the best.
        metric = metrics.get(config.metric_for_best, float(state.step))
        if config.metric_for_best == "loss" and self.val_rows:
            metric = -metric  # ranked higher-is-better throughout
        if not all(math.isfinite(v) for v in metrics.values()):
            metric = -math.inf
        self._log({"event": "eval", "step": state.step, **metrics})
        improved = not state.best or metric > state.best[0]["metric"]
        state.evals_without_improvement = (0 if improved
                                           else state.evals_without_improvement + 1)
        if (config.early_stopping_patience is not None and self.val_rows
                and state.evals_without_improvement >= config.early_stopping_patience):
            state.stopped_early = True
        self._say_validation(metrics, improved, time.perf_counter() - t0)
        state.best.append({"name": f"step-{state.step:07d}", "step": state.step,
                           "metric": metric, "metrics": metrics})
        state.best.sort(key=lambda b: (-b["metric"], b["step"]))
        state.best = state.best[:config.save_total_limit]
        self._checkpoint()

    def _checkpoint_due(self) -> bool:
        minutes = self.config.checkpoint_minutes
        return minutes is not None and time.monotonic() - self.saved_at >= 60 * minutes

    def _checkpoint(self) -> None:
        """The run's state as the latest checkpoint; one kept only for resuming (not among
        the best) is removed when the next one is written."""
        save_checkpoint(self.checkpoints, self.task.model, self.optimizer, self.scheduler,
                        self.state)
        rotate(self.checkpoints, self.state, self.config.save_total_limit)
        self.saved_at = time.monotonic()

    def _say_validation(self, metrics: dict, improved: bool, seconds: float) -> None:
        """One console line per evaluation (train_log.jsonl has the same numbers), printed
        above the bar, so a run shows how it is going while it goes."""
        if not metrics:
            return
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        best = "best so far" if improved else (
            f"no better for {self.state.evals_without_improvement} evaluation(s)")
        tqdm.write(f"step {self.state.step}/{self.total}: validation {shown} ({best}; "
                   f"{len(self.val_rows):,} rows in {seconds:.1f} s)", file=sys.stderr)

    def save(self) -> dict:
        """The best checkpoint as the model folder; returns its validation metrics."""
        state, world = self.state, self.world
        if not world.main:  # rank 0 alone restores the best checkpoint and saves the model
            barrier(world)
            return {}
        if state.best and state.best[0]["metric"] == -math.inf:
            raise InputError(f"no checkpoint of {self.out} has a finite validation loss: "
                             "nothing worth saving (see train_log.jsonl); lower learning_rate "
                             "or check the data")
        if state.best:
            best = self.checkpoints / state.best[0]["name"]
            load_trainable_state(self.task.model,
                                 load_file(str(best / "trainable.safetensors")))
        metrics = {"best_step": state.best[0]["step"] if state.best else state.step,
                   **(state.best[0]["metrics"] if state.best else {})}
        training = {"command": self.command,
                    "data": describe_data(self.config),
                    "config": json.loads(self.config.model_dump_json()),
                    "train_rows": len(self.rows), "steps": state.step,
                    "stopped_early": state.stopped_early,
                    "skipped_steps": state.skipped_steps,
                    "seconds_this_run": round(time.perf_counter() - self.started, 1),
                    "processes": world.size}
        self.task.model.eval()
        self.task.save_model(self.out, metrics, training)
        self._log({"event": "done", "step": state.step, **metrics})
        self.log.close()
        barrier(world)
        return metrics

    def _log(self, record: dict) -> None:
        if self.log is None:  # not the main rank
            return
        self.log.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")
        self.log.flush()


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
    """Train a task built by hand (``build_task``) and save its best checkpoint."""
    return Recipe(task, config).run(resume)
