"""The cascade's accuracy and speed at several escalation shares, from one scoring of each
stage: a cascade sends a text on exactly when the fast stage's confidence is below the
threshold, so on a test set its answers are the fast stage's except for the least confident
share, which take the accurate stage's. Both stages score every text once (in their
runtimes, timed); the table then follows exactly for every share.

    .venv/bin/python benchmarks/cascade_table.py --fast default --accurate accurate \
        --test-file ../shared/data/sst2/dev.tsv --shares 0.05 0.10 0.15 0.25

Throughput of a share s is 1 / (t_fast + s * t_accurate) texts/s per text-time measured
here (the accurate stage runs only on the hard share). Thresholds are the share's quantile
on this test set; ``polarity calibrate --cascade`` picks a shipped threshold on validation.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def from_report(folder: str, texts: list[str]) -> tuple[np.ndarray, float]:
    """P(POSITIVE) per text and seconds per text from a ``polarity evaluate`` report of the
    same test file (its predictions.csv), instead of scoring again."""
    import csv

    from polarity.evaluate.report import spreadsheet_safe

    rows = list(csv.DictReader(open(f"{folder}/predictions.csv", encoding="utf-8")))
    if [r["text"] for r in rows] != [spreadsheet_safe(t) for t in texts]:
        raise SystemExit(f"{folder} is a report of another test file")
    p = np.asarray([float(r["confidence"]) if r["predicted"] == "POSITIVE"
                    else 1 - float(r["confidence"]) for r in rows])
    return p, float(np.mean([float(r["latency_ms"]) for r in rows])) / 1000


def scored(model: str, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    from polarity import load_classifier

    clf = load_classifier(model)
    clf.positive_probabilities(texts[:2])  # warm-up
    started = time.perf_counter()
    p = np.asarray(clf.positive_probabilities(texts, batch_size))
    return p, (time.perf_counter() - started) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", default="default")
    parser.add_argument("--accurate", default="accurate")
    parser.add_argument("--test-file", default="../shared/data/sst2/dev.tsv")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.05, 0.10, 0.15, 0.25])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", help="also write the per-text probabilities here")
    parser.add_argument("--accurate-report", help="a `polarity evaluate` report folder of the "
                        "accurate model on this test file: its predictions and times are used")
    args = parser.parse_args()

    from polarity.evaluate.cascade import curve_point, threshold_for_share
    from polarity.evaluate.data import load_test_set
    from polarity.evaluate.setup import cpu

    test = load_test_set(args.test_file)
    gold = np.asarray([g == "POSITIVE" for g in test.labels])
    p1, t1 = scored(args.fast, test.texts, args.batch_size)
    p2, t2 = (from_report(args.accurate_report, test.texts) if args.accurate_report
              else scored(args.accurate, test.texts, args.batch_size))
    conf = np.maximum(p1, 1 - p1)
    print(f"CPU: {cpu()}; {len(gold)} texts of {args.test_file}")
    print("| model | share sent on | accuracy | texts/s | x the accurate tier's throughput |")
    print("|---|---|---|---|---|")
    rows = [("fast alone", 0.0, curve_point(p1, p2, gold, 0.5)["accuracy"], t1),
            ("accurate alone", 1.0, curve_point(p1, p2, gold, 1.0)["accuracy"], t2)]
    for share in args.shares:
        point = curve_point(p1, p2, gold, threshold_for_share(conf, share))
        rows.append((f"cascade {share:.0%}", point["share_sent"], point["accuracy"],
                     t1 + point["share_sent"] * t2))
    for name, share, accuracy, seconds in rows:
        print(f"| {name} | {share:.1%} | {accuracy:.4f} | {1 / seconds:.2f} | "
              f"{t2 / seconds:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"fast": p1.tolist(), "accurate": p2.tolist(), "gold": gold.tolist(),
                       "seconds_per_text": [t1, t2]}, f)


if __name__ == "__main__":
    main()
