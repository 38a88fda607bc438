"""Arguments of ``polarity batch``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from polarity.contract import LoadOptions


@dataclass
class BatchOptions:
    """Arguments of ``polarity batch``."""

    model: str = "default"
    """'default', 'vader' or a model folder."""
    input: Path = Path("texts.csv")
    """A CSV/TSV/JSONL/Parquet file or a folder of them."""
    output: Path = Path("scored")
    """Output folder of Parquet parts (created; reused to resume)."""
    engine: str = "local"
    """``local`` or ``ray``."""
    text_column: str = "text"
    """Column holding the text."""
    batch_size: int = 64
    """Texts per model call."""
    shard_rows: int | None = None
    """Rows per output part, the unit of resumption; None sizes them to the input (an eighth
    of its rows, 50 to 10,000 per part: :func:`polarity.batch.shards.auto_plan`), or on a
    rerun keeps the size the run started with."""
    restart: bool = False
    """Delete an earlier run's files in ``output`` and start over (needed when the input's
    content or a setting changed since)."""
    ray_address: str | None = None
    """A Ray cluster (``ray://host:10001`` or ``auto``); None starts a local Ray."""
    num_actors: int = 2
    """Ray actors, each with its own copy of the model."""
    threads_per_actor: int = 1
    """CPU threads (and Ray CPUs) per actor."""
    progress: bool = True
    """Show a progress bar."""
    load: LoadOptions = field(default_factory=LoadOptions)
    """How to load the model (device, runtime ...); a Ray actor adds its thread count."""
