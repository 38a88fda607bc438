"""``polarity prepare``: sources -> cleaning -> quality control -> balanced, stratified splits.

Two streaming passes, so memory grows with the number of distinct texts (a 16-byte hash
each), not with their size: 1.6 million tweets need a few hundred MB.

1. Read every source, clean, drop short texts and duplicates (exact, then normalised),
   remember which labels each normalised text had; write candidates to a temporary file
   (one without a name, so that no run, even one killed, leaves it behind). A row larger
   than MAX_ROW_BYTES is counted as ``too_large``, never read whole.
2. Drop texts seen with both labels, optionally balance the classes, and assign each
   row to train/val/test by a seeded per-class permutation (deterministic, stratified).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm.auto import tqdm

from polarity.data.cleaning import CleaningConfig, clean_text, normalized_key
from polarity.data.inputs import iter_source
from polarity.data.sources import Record, SourceSpec
from polarity.data.writers import open_writer
from polarity.errors import InputError
from polarity.folders import write_atomically
from polarity.labels import LABELS

SPLITS = ("train", "val", "test")


class PrepareConfig(BaseModel):
    """Arguments of ``polarity prepare``."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    sources: list[SourceSpec]
    """Inputs, each ``KIND:PATH?options`` on the command line (see SourceSpec)."""
    output_dir: Path = Path("data/prepared")
    """Folder for train/val/test files and stats.json."""
    format: Literal["jsonl", "parquet"] = "jsonl"
    """Output format of the splits."""
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig)
    """Text cleaning options."""
    min_chars: int = 10
    """Texts shorter than this (after cleaning) are dropped."""
    balance: bool = False
    """Down-sample the larger class to the size of the smaller one."""
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """Fractions for train, val and test."""
    seed: int = 42
    """Seed of the split and balancing permutations."""

    @field_validator("sources", mode="before")
    @classmethod
    def _parse_specs(cls, value):
        return [SourceSpec.parse(v) if isinstance(v, str) else v for v in value]

    @field_validator("split")
    @classmethod
    def _check_split(cls, value):
        if any(v < 0 for v in value) or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError("split fractions must be non-negative and sum to 1")
        return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


@dataclass
class _Tally:
    """What the passes counted, for stats.json."""

    rows_in: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # one location per drop reason
    source_in: Counter[str] = field(default_factory=Counter)
    source_out: Counter[str] = field(default_factory=Counter)
    counts: dict[str, Counter[str]] = field(
        default_factory=lambda: {s: Counter() for s in SPLITS})


def prepare(config: PrepareConfig, cache_dir: Path | None = None,
            progress: bool = True) -> dict:
    """Run the whole preparation and return the statistics written to ``stats.json``."""
    start = time.perf_counter()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tally = _Tally()
    # Unlinked at creation (beside the output, on the disk that has room for it): the file
    # vanishes with the process however it ends.
    with tempfile.TemporaryFile("w+", encoding="utf-8", dir=out,
                                prefix=".prepare-candidates-") as candidates:
        label_mask = _write_candidates(config, candidates, tally, cache_dir, progress)
        conflicts = {k for k, mask in label_mask.items() if mask == 3}
        del label_mask
        final = _write_splits(config, candidates, conflicts, tally, progress)
    stats = _stats(config, tally, time.perf_counter() - start)
    for split, path in final.items():
        os.replace(path, out / f"{split}.{config.format}")
    write_atomically(out / "stats.json", json.dumps(stats, indent=2) + "\n")
    return stats


def _write_candidates(config: PrepareConfig, cand, tally: _Tally, cache_dir: Path | None,
                      progress: bool) -> dict[bytes, int]:
    """Pass 1: read, clean, drop short texts and duplicates; returns, per normalised text,
    a bit per label it was seen with."""
    exact_seen: set[bytes] = set()
    label_mask: dict[bytes, int] = {}
    with tqdm(desc="prepare: reading", unit=" rows", disable=not progress) as bar:
        for spec in config.sources:
            for item in iter_source(spec, cache_dir):
                tally.rows_in += 1
                bar.update()
                if not isinstance(item, Record):
                    tally.dropped[item.reason] += 1
                    tally.examples.setdefault(item.reason, item.where)
                    continue
                tally.source_in[item.source] += 1
                text = clean_text(item.text, config.cleaning)
                if not text.isascii() and not _encodable(text):
                    tally.dropped["invalid_unicode"] += 1  # a lone surrogate ("\ud800")
                    tally.examples.setdefault("invalid_unicode", f"{item.source}")
                    continue
                if len(text) < config.min_chars:
                    tally.dropped["too_short"] += 1
                    continue
                key = _digest(normalized_key(text))
                bit = 1 << LABELS.index(item.label)
                exact = _digest(text)
                duplicate = ("duplicate_exact" if exact in exact_seen
                             else "duplicate_normalized" if key in label_mask else None)
                exact_seen.add(exact)
                label_mask[key] = label_mask.get(key, 0) | bit
                if duplicate:
                    tally.dropped[duplicate] += 1
                    continue
                cand.write(json.dumps({"text": text, "label": item.label,
                                       "source": item.source, "k": key.hex()}) + "\n")
    return label_mask


def _write_splits(config: PrepareConfig, candidates, conflicts: set[bytes], tally: _Tally,
                  progress: bool) -> dict[str, Path]:
    """Pass 2: drop texts seen with both labels, balance if asked, and assign each row to a
    split by a seeded per-class permutation. Returns the complete split files, still under
    temporary names so that a killed run never leaves half a train file next to the previous
    run's stats.json."""
    class_n: Counter[str] = Counter()
    candidates.seek(0)
    for line in candidates:
        row = json.loads(line)
        if bytes.fromhex(row["k"]) not in conflicts:
            class_n[row["label"]] += 1
    keep_n = {lab: class_n[lab] for lab in LABELS}
    if config.balance and all(class_n[lab] for lab in LABELS):
        keep_n = dict.fromkeys(LABELS, min(keep_n.values()))
    rng = np.random.default_rng(config.seed)
    ranks = {lab: rng.permutation(class_n[lab]) for lab in LABELS}
    seen_per_class: Counter[str] = Counter()
    partial = {s: Path(config.output_dir) / f".{s}.{config.format}.partial" for s in SPLITS}
    writers = {s: open_writer(partial[s], config.format) for s in SPLITS}
    try:
        # The bar counts rows written (not candidates read), so it ends at the rows the
        # splits hold.
        candidates.seek(0)
        with tqdm(total=sum(keep_n.values()), desc="prepare: writing", unit=" rows",
                  disable=not progress) as bar:
            for line in candidates:
                row = json.loads(line)
                if bytes.fromhex(row.pop("k")) in conflicts:
                    tally.dropped["conflicting_labels"] += 1
                    continue
                lab = row["label"]
                rank = int(ranks[lab][seen_per_class[lab]])
                seen_per_class[lab] += 1
                if rank >= keep_n[lab]:
                    tally.dropped["balanced_out"] += 1
                    continue
                split = _split_of(rank, keep_n[lab], config.split)
                writers[split].write(row)
                bar.update()
                tally.counts[split][lab] += 1
                tally.source_out[row["source"]] += 1
        if not any(sum(c.values()) for c in tally.counts.values()):
            raise InputError(
                f"no rows survived preparation (read {tally.rows_in}, dropped "
                f"{dict(tally.dropped)}); check the column mapping and label values of your "
                "sources")
    except BaseException:
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    finally:
        for w in writers.values():
            w.close()
    return partial


def _stats(config: PrepareConfig, tally: _Tally, seconds: float) -> dict:
    counts = tally.counts
    return {
        "rows_in": tally.rows_in,
        "rows_out": sum(sum(c.values()) for c in counts.values()),
        "dropped": dict(sorted(tally.dropped.items())),
        "dropped_examples": tally.examples,
        "splits": {s: {"rows": sum(counts[s].values()), **{lab: counts[s][lab] for lab in LABELS}}
                   for s in SPLITS},
        "classes": {lab: sum(counts[s][lab] for s in SPLITS) for lab in LABELS},
        "sources": {name: {"rows_in": tally.source_in[name],
                           "rows_out": tally.source_out[name]}
                    for name in sorted(tally.source_in)},
        "seconds": round(seconds, 2),
        "config": json.loads(config.model_dump_json()),
    }


def _split_of(rank: int, n: int, fractions: tuple[float, float, float]) -> str:
    """Rows ranked below 80% of n go to train, the next 10% to val, the rest to test."""
    train_end = round(n * fractions[0])
    val_end = round(n * (fractions[0] + fractions[1]))
    if rank < train_end:
        return "train"
    return "val" if rank < val_end else "test"
