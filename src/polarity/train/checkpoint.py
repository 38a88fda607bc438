"""Checkpoints that survive SIGKILL: written to a temporary folder, then renamed.

A checkpoint holds only the trainable tensors (adapter and head), the optimizer and
scheduler state, the random number generator states and the trainer's bookkeeping.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from polarity.cache import file_sha256
from polarity.errors import InputError
from polarity.folders import write_atomically

PREFIX = "step-"
RESUME_CONFIG = "resume_config.json"
# The settings that shape the run's trajectory: a resume with any of them changed would not
# continue the same run (other batches, another schedule, another model).
TRAJECTORY_FIELDS = ("backend", "base_model", "dtype", "init_from", "train_file",
                     "max_train_rows", "sample_train_rows", "sources", "min_chars",
                     "max_length", "lora", "method", "frozen_layers", "preprocessing",
                     "exit_layers", "exit_weight",
                     "head_dropout", "num_epochs", "max_steps", "batch_size",
                     "gradient_accumulation_steps", "learning_rate", "weight_decay",
                     "warmup_ratio", "lr_scheduler", "seed", "teacher_column", "teacher_file",
                     "distill_weight", "distill_temperature", "gold_sources")
# Files whose content, not only their name, is part of the trajectory.
CONTENT_FIELDS = ("train_file", "teacher_file")
CHECKED_KEYS = (*TRAJECTORY_FIELDS, *(f"{key}_sha256" for key in CONTENT_FIELDS))


@dataclass
class TrainerState:
    step: int = 0
    # [{"name", "step", "metric", "metrics"}], best first
    best: list[dict] = field(default_factory=list)
    evals_without_improvement: int = 0
    stopped_early: bool = False
    skipped_steps: int = 0
    """Steps whose loss or gradient norm was not finite: their update was not applied."""
    bad_in_a_row: int = 0


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in tensors]
    if missing:
        raise InputError(f"checkpoint does not match the model: {len(missing)} tensors missing "
                         f"(first: {missing[0]}); was it made with another config?")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)


def save_checkpoint(folder: Path, model: nn.Module, optimizer, scheduler,
                    state: TrainerState) -> Path:
    final = folder / f"{PREFIX}{state.step:07d}"
    tmp = folder / f".tmp-{PREFIX}{state.step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               tmp / "optimizer.pt")
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    torch.save({"torch": torch.get_rng_state(),
                "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                          "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
                "python": random.getstate()}, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2))
    _fsync_dir(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _fsync_dir(folder)
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def latest_checkpoint(folder: Path) -> Path | None:
    done = sorted(p for p in folder.glob(f"{PREFIX}*") if (p / "state.json").is_file())
    return done[-1] if done else None


def load_checkpoint(path: Path, model: nn.Module, optimizer, scheduler) -> TrainerState:
    load_trainable_state(model, load_file(str(path / "trainable.safetensors")))
    # weights_only: a checkpoint is data, and unpickling arbitrary objects from a folder
    # that others can write to would run their code.
    opt = torch.load(path / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(opt["optimizer"])
    scheduler.load_state_dict(opt["scheduler"])
    try:
        rng = torch.load(path / "rng.pt", weights_only=True)
    except pickle.UnpicklingError:  # written by polarity before 0.2 (numpy arrays inside)
        print(f"polarity train: {path}/rng.pt is in an older format; resuming without its "
              "random states (weights, optimizer and schedule are restored)", file=sys.stderr)
    else:
        torch.set_rng_state(rng["torch"])
        state = rng["numpy"]
        np.random.set_state((state["kind"], state["keys"].numpy().astype(np.uint32),
                             state["pos"], state["has_gauss"], state["gauss"]))
        random.setstate(rng["python"])
    return TrainerState(**json.loads((path / "state.json").read_text()))


def rotate(folder: Path, state: TrainerState, keep_best: int) -> None:
    """Delete checkpoints that are neither among the best ``keep_best`` nor the latest."""
    keep = {b["name"] for b in state.best[:keep_best]}
    latest = latest_checkpoint(folder)
    if latest is not None:
        keep.add(latest.name)
    state.best = state.best[:keep_best]
    for path in folder.glob(f"{PREFIX}*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def check_resume_config(output_dir: Path, config, resuming: bool, write: bool = True) -> None:
    """Record the trajectory settings when a run starts (``write``: on the main rank only);
    when it resumes, refuse changed ones (a warm start from the saved model, ``init_from``, is
    the way to train further)."""
    path = output_dir / RESUME_CONFIG
    now = json.loads(config.model_dump_json(include=set(TRAJECTORY_FIELDS)))
    for key in ("train_file", "init_from"):  # the same file named from another directory
        if now.get(key):
            now[key] = str(Path(now[key]).resolve())
    # a run that spans sessions rebuilds its data files: the same name must hold the same rows
    for key in CONTENT_FIELDS:
        if now.get(key) and Path(now[key]).is_file():
            now[f"{key}_sha256"] = file_sha256(Path(now[key]))
    if not resuming or not path.is_file():
        if not write:
            return
        write_atomically(path, json.dumps(now, indent=2) + "\n")
        return
    before = json.loads(path.read_text())
    changed = [f"{k} was {before.get(k)!r}, now {now.get(k)!r}" for k in CHECKED_KEYS
               if k in before and before[k] != now.get(k)]
    if changed:
        raise InputError(f"cannot resume {output_dir} with other settings ({'; '.join(changed)}):"
                         " restore them, or start a new --output-dir (init_from: "
                         f"{output_dir} continues from its saved model)")
