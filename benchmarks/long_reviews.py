"""Full-length reviews: the default model's windows alone (how 1.1.0 read them) beside its
long-text reader (1.2.0), and optionally the accurate tier on a sample, in one run: accuracy,
ECE, reviews/s and windows/s on this machine's CPU.

    .venv/bin/python benchmarks/long_reviews.py                       # data/long-test, all
    .venv/bin/python benchmarks/long_reviews.py --rows 5000 --also accurate cascade
    .venv/bin/python benchmarks/long_reviews.py --test-file reviews.jsonl --json out.json

The test file comes from `polarity prepare --config configs/prepare_long_test.yaml` (the
Large Movie Review Dataset's test reviews; docs/long_texts.md). The windows are scored once;
"windows alone" is their confidence-weighted mean, the rule before the reader.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from polarity.train.long_texts import accuracy_and_ece


def sample(path: Path, rows: int | None, seed: int = 0) -> tuple[list[str], np.ndarray]:
    from polarity.evaluate.data import load_test_set

    data = load_test_set(path)
    gold = np.asarray([label == "POSITIVE" for label in data.labels], dtype=int)
    keep = np.arange(len(gold))
    if rows and rows < len(gold):  # balanced, seeded
        rng = np.random.default_rng(seed)
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(gold == g))[:rows // 2]
                                       for g in (0, 1)]))
    return [data.texts[i] for i in keep], gold[keep]


def default_rows(texts: list[str], gold: np.ndarray, batch_size: int) -> list[dict]:
    from polarity.predictor import load_classifier
    from polarity.preprocess import apply_all

    model = load_classifier("default")
    backend, card = model.backend, model.card
    reader, backend.long_reader = backend.long_reader, None
    started = time.perf_counter()
    scored = backend.score(texts, batch_size)
    seconds = time.perf_counter() - started
    z, windows = np.asarray(scored.log_odds), np.asarray(scored.windows)
    # The reader on the same windows, as score() applies it to texts of more than one;
    # score() has their token ids already (it cut them into sentences), so they are made
    # before the clock starts.
    long = np.flatnonzero(windows > 1)
    ids = backend.tokenizer(apply_all([texts[i] for i in long], card.preprocessing),
                            add_special_tokens=False, truncation=False,
                            verbose=False)["input_ids"]
    started = time.perf_counter()
    read = z.copy()
    read[long] = reader.log_odds(ids, z[long])
    extra = time.perf_counter() - started
    rows = []
    for what, log_odds, spent in (("default, windows alone (the 1.1.0 rule)", z, seconds),
                                  ("default 1.2.0, long-text reader", read, seconds + extra)):
        for part, keep in (("all", slice(None)), ("longer than one window", long)):
            rows.append({"what": what, "part": f"{part} ({len(gold[keep])})",
                         **accuracy_and_ece(log_odds[keep] / card.temperature, gold[keep]),
                         "reviews_s": len(texts) / spent, "windows_s": windows.sum() / spent})
    rows[-1]["note"] = f"the reader adds {extra / max(len(long), 1) * 1000:.2f} ms a long review"
    return rows


def model_row(name: str, texts: list[str], gold: np.ndarray) -> dict:
    """Another model (the accurate tier, the cascade) on a sample, through the contract."""
    from polarity.predictor import load_classifier

    model = load_classifier(name)
    started = time.perf_counter()
    preds = model.predict(texts, batch_size=8)
    seconds = time.perf_counter() - started
    p = np.clip([x.scores["POSITIVE"] for x in preds], 1e-7, 1 - 1e-7)
    sent = sum(getattr(x, "tier", None) == "accurate" for x in preds)
    return {"what": f"{name} ({model.info.backend})", "part": f"a sample ({len(texts)})",
            **accuracy_and_ece(np.log(p / (1 - p)), gold), "reviews_s": len(texts) / seconds,
            "windows_s": float("nan"),
            **({"note": f"sent on {sent} of {len(texts)}"} if name == "cascade" else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-file", type=Path, default=Path("data/long-test/test.jsonl"))
    parser.add_argument("--rows", type=int, help="a balanced, seeded sample of this many")
    parser.add_argument("--also", nargs="*", default=[], metavar="MODEL",
                        help="also these models (e.g. accurate cascade) on --also-rows")
    parser.add_argument("--also-rows", type=int, default=100,
                        help="a balanced, seeded sample for --also (its own seed)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from polarity.evaluate.setup import cpu

    texts, gold = sample(args.test_file, args.rows)
    rows = default_rows(texts, gold, args.batch_size)
    if args.also:
        few, few_gold = sample(args.test_file, args.also_rows, seed=1)
        rows += [model_row(name, few, few_gold) for name in args.also]
    machine = cpu()
    print(f"\n{args.test_file}: {len(texts)} reviews; {machine['name']}, {machine['cores']} "
          f"cores ({' '.join(machine['extensions'])})\n")
    print("| model | reviews | accuracy | ECE | reviews/s | windows/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['part']} | {r['accuracy']:.4f} | {r['ece']:.4f} | "
              f"{r['reviews_s']:.2f} | {r['windows_s']:.0f} |")
    for r in rows:
        if r.get("note"):
            print(f"\n{r['what']}: {r['note']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu": machine, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
