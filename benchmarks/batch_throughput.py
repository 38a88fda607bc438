"""`polarity batch` throughput: the local engine against Ray with N actors, same input, one run.

    .venv/bin/python benchmarks/batch_throughput.py --rows 100000 --actors 2

Writes a CSV of distinct tweet-length texts, scores it with each engine into a fresh folder,
checks that both outputs hold every row once with the same labels, and prints one table.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = ("the a this that it was is really very not so movie phone battery screen food "
         "service price delivery story great good awful bad boring lovely terrible fine "
         "superb broken slow fast love hate enjoyed disappointed recommend avoid").split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--model", default="default")
    parser.add_argument("--shard-rows", type=int, default=5_000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from polarity.batch import BatchOptions, run_batch

    work = Path(tempfile.mkdtemp(prefix="polarity-batch-bench-"))
    rng = np.random.default_rng(0)
    with open(work / "in.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        for i in range(args.rows):
            writer.writerow([i, f"#{i} " + " ".join(rng.choice(WORDS, 19))])
    cores = os.cpu_count() or 1
    runs = [("local", dict(engine="local")),
            (f"ray, {args.actors} actors x 1 thread",
             dict(engine="ray", num_actors=args.actors, threads_per_actor=1))]
    results, labels = [], []
    os.environ.setdefault("POLARITY_NUM_THREADS", str(cores))
    try:
        for name, extra in runs:
            out = work / name.split(",")[0]
            started = time.perf_counter()
            summary = run_batch(BatchOptions(model=args.model, input=work / "in.csv",
                                             output=out, shard_rows=args.shard_rows,
                                             batch_size=args.batch_size, progress=False,
                                             **extra))
            seconds = time.perf_counter() - started
            table = pq.read_table(out, columns=["row_id", "predicted_sentiment"]).sort_by("row_id")
            labels.append(table.column("predicted_sentiment").to_pylist())
            assert table.column("row_id").to_pylist() == list(range(args.rows))
            results.append((name, summary["scored_rows"], seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same = sum(a == b for a, b in zip(*labels, strict=True))
    print(f"\nmachine: {platform.processor() or platform.machine()}, {cores} cores; "
          f"model {args.model}, runtime {os.environ.get('POLARITY_RUNTIME', 'auto')}\n")
    print("| engine | rows | seconds (incl. start-up) | texts/s |")
    print("|---|---|---|---|")
    for name, rows, seconds in results:
        print(f"| {name} | {rows} | {seconds:.1f} | {rows / seconds:.0f} |")
    print(f"\nsame label on {same}/{args.rows} rows; ratio ray/local: "
          f"{results[0][2] / results[1][2]:.2f}")


if __name__ == "__main__":
    main()
