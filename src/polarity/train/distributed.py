"""Data parallelism under ``torchrun`` / ``accelerate launch``, with no code change for users.

When ``WORLD_SIZE`` > 1 each process joins a process group (gloo on CPUs, NCCL on GPUs),
takes its slice of every global batch, and the trainable gradients are averaged with an
all-reduce before each optimizer step. The per-example weighting makes a step's gradient the
same as one process's over the whole batch. Only rank 0 evaluates, checkpoints, logs and saves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> str:
        if torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return "cpu"


def init_world() -> World:
    """Join the process group that torchrun describes in the environment, if any."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    import torch.distributed as dist

    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend)
    return world


def shard(indices, world: World):
    """This rank's share of a global batch."""
    return indices[world.rank::world.size] if world.size > 1 else indices


def average_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    if world.size <= 1:
        return
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world.size


def all_sum(value: float, world: World) -> float:
    if world.size <= 1:
        return value
    import torch.distributed as dist

    # NCCL reduces only tensors on the rank's GPU; gloo's device is the CPU.
    t = torch.tensor([value], dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return float(t.item())


def broadcast_flag(flag: bool, world: World) -> bool:
    """Rank 0's decision (e.g. early stopping) for every rank."""
    if world.size <= 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([int(flag)], device=world.device)
    dist.broadcast(t, 0)
    return bool(t.item())


def barrier(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        dist.barrier()


def finish(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
