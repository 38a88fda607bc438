"""The Ray engine of ``polarity batch``: shard descriptions through Ray Data ``map_batches``
to a fixed pool of actors; each actor loads the model once and writes the shards it scores."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

from polarity.batch.options import BatchOptions
from polarity.batch.passes import work_on_shard
from polarity.batch.shards import Shard
from polarity.ray_cluster import connect


class ShardScorer:
    """A Ray Data actor: one model, many shards of one pass (``score`` or ``escalate``: a
    cascade's two passes are two actor pools, each with its own stage)."""

    def __init__(self, model: str, output: str, options: dict, mode: str, threshold: float,
                 load: dict):
        from polarity.contract import LoadOptions
        from polarity.predictor import load_classifier

        self.predictor = load_classifier(model, LoadOptions(**load))
        self.output, self.mode, self.threshold = output, mode, threshold
        self.options = BatchOptions(**options)

    def __call__(self, batch: dict) -> dict:
        from pathlib import Path

        results = []
        for text in batch["shard"]:
            fields = json.loads(str(text))
            shard = Shard(**{**fields, "columns": tuple(fields["columns"])})
            results.append(work_on_shard(self.predictor, self.mode, shard, Path(self.output),
                                         self.options, self.threshold))
        return {key: [r[key] for r in results] for key in ("shard", "rows", "errors")}


def run_on_ray(options: BatchOptions, pending: list[Shard], model: str, output,
               mode: str = "score", threshold: float = 0.0) -> Iterator[dict]:
    import ray

    started = connect(options.ray_address)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        items = [{"shard": json.dumps(s.to_dict())} for s in pending]
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        # One shard in flight per actor: an actor that is ready first must not take every
        # shard of a small input while the others are still loading the model.
        pool = ray.data.ActorPoolStrategy(size=options.num_actors,
                                          max_tasks_in_flight_per_actor=1)
        load = {**dataclasses.asdict(options.load), "threads": options.threads_per_actor}
        scored = dataset.map_batches(
            ShardScorer, batch_size=1, compute=pool, num_cpus=options.threads_per_actor,
            fn_constructor_kwargs={"model": model, "output": str(output.resolve()),
                                   "options": {"text_column": options.text_column,
                                               "batch_size": options.batch_size},
                                   "mode": mode, "threshold": threshold, "load": load})
        for row in scored.iter_rows():
            yield {k: int(row[k]) for k in ("shard", "rows", "errors")}
    finally:
        if started:
            ray.shutdown()
