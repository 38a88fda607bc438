"""Two encoder models side by side in one run (the shipped default and a candidate): the raw
engine's texts/s on unique tweet-length texts, the service's requests/s at concurrency 64
and its p50 at concurrency 1, accuracy on SST-2 dev and on the validation split, and, for a
model with early exits, the share of texts that leave at each exit.

    python benchmarks/models_side_by_side.py default runs/student-mpnet [--requests 3000]

The load generator and server start are benchmarks/serve_load.py's; every row of one run
shares the machine's state, so compare ratios across runs, not absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from collections import Counter
from pathlib import Path

DEV = ("hf:stanfordnlp/sst2?split=validation&text_column=sentence"
       "&local_copy=tsv:../shared/data/sst2/dev.tsv")
_spec = importlib.util.spec_from_file_location("serve_load",
                                               Path(__file__).with_name("serve_load.py"))
serve_load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_load)


def scored(model, data) -> tuple[float, list[int | None]]:
    """Accuracy on a test set, and the early exit that answered each text (None: the full
    model), from one scoring pass through the model's own scorer."""
    from polarity.contract import label_of

    probs, _, exits = model.score(data.texts, 64)
    hits = [label_of(p) == gold for p, gold in zip(probs, data.labels, strict=True)]
    return sum(hits) / len(hits), exits


def exit_shares(exits: list[int | None]) -> dict | None:
    """Share of texts answered after each exit layer (None: a model without exits)."""
    if all(e is None for e in exits):
        return None
    counts = Counter(exits)
    shares = {f"after layer {k}": counts[k] / len(exits) for k in sorted(filter(None, counts))}
    return {**shares, "full depth": counts[None] / len(exits)}


def measure(name: str, requests: int, seconds: float, dev, val) -> dict:
    from polarity.predictor import load_classifier

    model = load_classifier(name, runtime="onnx")
    tweets = serve_load.texts(requests, 20, 7)
    model.predict(tweets[:64], batch_size=32)
    started = time.perf_counter()
    model.predict(tweets, batch_size=32)
    engine = len(tweets) / (time.perf_counter() - started)
    val_accuracy, val_exits = scored(model, val)
    row = {"model": name, "engine_texts_per_s": engine, "sst2_dev": scored(model, dev)[0],
           "validation": val_accuracy, "exits": exit_shares(val_exits)}
    port = serve_load.free_port()
    env = {**serve_load.os.environ, "POLARITY_RUNTIME": "onnx", "LOG_LEVEL": "warning",
           "API_KEY": serve_load.KEY}  # keys from the environment: a flag shows in ps
    server = serve_load.start([sys.executable, "-m", "polarity", "serve", "--model", name,
                               "--port", str(port),
                               "--rate-limit", "100000000/hour", "--log-level", "warning"],
                              port, env)
    try:
        bodies = [json.dumps({"text": t}).encode() for t in serve_load.texts(requests, 20, 8)]
        asyncio.run(serve_load.load(port, "/api/v1/analyze", bodies[:200], 16, 10))
        one = asyncio.run(serve_load.load(port, "/api/v1/analyze", bodies, 1, seconds))
        many = asyncio.run(serve_load.load(port, "/api/v1/analyze", bodies, 64, seconds))
    finally:
        server.terminate()
        server.wait(timeout=60)
    row.update({"service_rps_c64": many["rps"], "service_errors_c64": many["errors"],
                "service_p50_c1_ms": one["p50"], "service_p99_c64_ms": many["p99"]})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--val-file", default="data/default/val.jsonl")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from polarity.evaluate.data import load_test_set
    from polarity.evaluate.setup import cpu

    dev, val = load_test_set(DEV), load_test_set(args.val_file)
    rows = [measure(m, args.requests, args.max_seconds, dev, val) for m in args.models]
    machine = cpu()
    print(f"CPU {machine['name']}, {machine['cores']} cores, "
          f"{', '.join(machine['extensions']) or 'no AVX2'}; ONNX Runtime int8; tweets ~20 "
          f"words, unique")
    print("| model | SST-2 dev | validation | engine texts/s (b32) | service req/s c64 "
          "(errors) | p50 c1 ms | exits |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        exits = ", ".join(f"{k}: {v:.0%}" for k, v in r["exits"].items()) if r["exits"] \
            else "-"
        print(f"| {r['model']} | {r['sst2_dev']:.4f} | {r['validation']:.4f} | "
              f"{r['engine_texts_per_s']:.0f} | {r['service_rps_c64']:.0f} "
              f"({r['service_errors_c64']}) | {r['service_p50_c1_ms']:.1f} | {exits} |")
    first = rows[0]
    for r in rows[1:]:
        print(f"\n{r['model']} / {first['model']}: engine "
              f"{r['engine_texts_per_s'] / first['engine_texts_per_s']:.2f}x, service "
              f"{r['service_rps_c64'] / first['service_rps_c64']:.2f}x", end="")
    print()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
