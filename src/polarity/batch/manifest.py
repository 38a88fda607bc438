"""The record of a ``polarity batch`` run in its output folder (``_batch.json``): what a rerun
must match to add its parts to the ones there (the input's path and content, the shard size,
the text column, the model), and starting over (``--restart``).

A manifest written before the input's content was recorded (no ``input_sha256``) still
resumes: the keys it has are compared, and a note says the content was not checked."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from polarity.batch.passes import FAST_DIR
from polarity.batch.shards import Shard, input_files
from polarity.errors import InputError
from polarity.folders import write_atomically

MANIFEST = "_batch.json"
#: Everything a run writes into its output folder, and so all that ``--restart`` deletes:
#: nothing else that a user keeps there is touched.
RUN_FILES = ("part-*.parquet", ".part-*.parquet.tmp", "_errors/part-*.jsonl",
             f"{FAST_DIR}/part-*.parquet", f"{FAST_DIR}/.part-*.parquet.tmp",
             f"{FAST_DIR}/_errors/part-*.jsonl", "_errors.jsonl", "_SUCCESS.json", MANIFEST)


def input_digest(path: str | Path) -> str:
    """sha256 over every input file's name, size and content, in input order."""
    digest = hashlib.sha256()
    for file in input_files(path):
        digest.update(f"{file.name}\0{file.stat().st_size}\0".encode())
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def has_parts(output: Path) -> bool:
    """Whether a run finished a part in ``output`` (a cascade's fast parts count)."""
    return any(output.glob("part-*.parquet")) or any((output / FAST_DIR).glob("part-*.parquet"))


def previous_run(output: Path) -> dict | None:
    """The manifest of the run whose parts are in ``output`` (None when there is none: a run
    that wrote no part yet may start over with other settings)."""
    path = output / MANIFEST
    return json.loads(path.read_text()) if path.is_file() and has_parts(output) else None


def check_or_record(options, shards: list[Shard], previous: dict | None) -> None:
    """Refuse to add parts to another run's (other settings, or an input whose content
    changed since); record this run's manifest when there is no earlier one."""
    manifest = {"input": str(Path(options.input).resolve()), "shard_rows": options.shard_rows,
                "text_column": options.text_column, "model": options.model,
                "shards": len(shards), "rows": sum(s.rows for s in shards),
                "input_sha256": input_digest(options.input)}
    if previous is None:
        options.output.mkdir(parents=True, exist_ok=True)
        write_atomically(options.output / MANIFEST,
                         (json.dumps(manifest, indent=2) + "\n").encode())
        return
    # Keys an earlier version did not record are not compared (its outputs still resume).
    changed = [k for k in manifest if k in previous and previous[k] != manifest[k]]
    if "input_sha256" in changed:
        raise InputError(
            f"{options.input} changed since {options.output} was started (sha256 "
            f"{previous['input_sha256'][:12]} then, {manifest['input_sha256'][:12]} now): its "
            "parts would mix old and new rows. Rerun with --restart to score it anew (the "
            "parts there are deleted), or choose another --output")
    if changed:
        raise InputError(f"{options.output} holds a run with a different {', '.join(changed)}"
                         "; rerun with --restart to start over there, or choose another "
                         "--output")
    if "input_sha256" not in previous:
        print(f"polarity batch: note: {options.output} was started by an earlier polarity that "
              "did not record the input's content; resuming without checking it",
              file=sys.stderr)


def clear_run(output: Path) -> int:
    """Delete an earlier run's files from ``output`` (:data:`RUN_FILES`); returns how many."""
    removed = 0
    for pattern in RUN_FILES:
        for path in output.glob(pattern):
            path.unlink()
            removed += 1
    return removed


def announce_resume(shards: list[Shard], pending: list[Shard], first_pass: int = 0) -> None:
    """Say how much of the job an earlier run did ("resuming: 5 of 8 parts done, 1,250 of
    2,000 rows"); ``first_pass``: parts a cascade's fast stage wrote besides."""
    done = len(shards) - len(pending)
    if not done and not first_pass:
        return
    rows = sum(s.rows for s in shards)
    rows_done = rows - sum(s.rows for s in pending)
    extra = f" (and {first_pass} more through the fast stage)" if first_pass else ""
    print(f"polarity batch: resuming: {done:,} of {len(shards):,} parts done{extra}, "
          f"{rows_done:,} of {rows:,} rows", file=sys.stderr)
