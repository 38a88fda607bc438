"""``polarity batch``: score files too large for memory, locally or on Ray, resumably
(:mod:`polarity.batch.run`); shards (:mod:`polarity.batch.shards`), one shard's scoring
(:mod:`polarity.batch.scoring`) and the Ray engine (:mod:`polarity.batch.on_ray`)."""

from polarity.batch.options import BatchOptions
from polarity.batch.run import run_batch

__all__ = ["BatchOptions", "run_batch"]
