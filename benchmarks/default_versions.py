"""Two fast-tier models side by side in one run (the default and a candidate, e.g. ``default``
and ``runs/student-accurate``): accuracy and ECE on SST-2 dev, the prepared test split,
the emoji set and IMDB test reviews, the engine's texts/s on unique tweet-length texts
(alternated, best of ``--rounds``), and each one's cascade curve on SST-2 dev behind the
accurate tier.

    .venv/bin/python benchmarks/default_versions.py default runs/student-accurate \
        --accurate-cache runs/accurate-sst2-dev.json

Every model runs as users get it (``load_classifier(name)``: ONNX Runtime static int8 for
the encoder). The accurate tier scores SST-2 dev once (about 4 minutes on 2 cores) and its
probabilities are kept in ``--accurate-cache`` for later runs. A cascade's answers on a test
set follow exactly from one scoring of each stage (:mod:`polarity.evaluate.cascade`): the
least confident share of the fast tier's texts take the accurate tier's answers. The IMDB
rows are a seeded sample of ``--imdb-rows`` reviews (all of them: ``--imdb-rows 0``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from serve_load import texts as tweet_texts

DEV = ("hf:stanfordnlp/sst2?split=validation&text_column=sentence"
       "&local_copy=tsv:../shared/data/sst2/dev.tsv")
SETS = {"SST-2 dev": DEV, "test split": "data/default/test.jsonl",
        "emoji set": "data/emoji/test.jsonl", "IMDB test": "data/long-test/test.jsonl"}
SHARES = (0.05, 0.10, 0.15, 0.20)


def load_sets(imdb_rows: int) -> dict:
    from polarity.evaluate.data import TestSet, load_test_set

    sets = {}
    for name, path in SETS.items():
        if not Path(path).is_file() and not path.startswith("hf:"):
            print(f"{name}: {path} not found, skipped")
            continue
        data = load_test_set(path)
        if name == "IMDB test" and 0 < imdb_rows < len(data.texts):
            pick = np.random.default_rng(0).choice(len(data.texts), imdb_rows, replace=False)
            data = TestSet(name=data.name, texts=[data.texts[i] for i in pick],
                           labels=[data.labels[i] for i in pick])
        sets[name] = data
    return sets


def quality(p: np.ndarray, labels: list[str]) -> tuple[float, float]:
    from polarity.evaluate.metrics import reliability

    gold = np.asarray(labels) == "POSITIVE"
    correct = (p >= 0.5) == gold
    return float(correct.mean()), reliability(np.maximum(p, 1 - p), correct)["ece"]


def engine_speed(models: dict, rounds: int, n: int) -> dict[str, float]:
    tweets = tweet_texts(n, 20, 7)
    best = dict.fromkeys(models, 0.0)
    for clf in models.values():
        clf.positive_probabilities(tweets[:64], 32)
    for _ in range(rounds):
        for name, clf in models.items():
            started = time.perf_counter()
            clf.positive_probabilities(tweets, 32)
            best[name] = max(best[name], n / (time.perf_counter() - started))
    return best


def accurate_on_dev(cache: Path | None, texts: list[str]) -> np.ndarray:
    if cache and cache.is_file():
        stored = json.loads(cache.read_text())
        if stored["texts"] == texts:
            return np.asarray(stored["p"])
    from polarity import load_classifier

    p = np.asarray(load_classifier("accurate").positive_probabilities(texts, 16))
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"texts": texts, "p": p.tolist()}))
    return p


def cascade_rows(p1: np.ndarray, p2: np.ndarray, labels: list[str]) -> list[str]:
    from polarity.evaluate.cascade import curve_point, threshold_for_share

    gold = np.asarray(labels) == "POSITIVE"
    conf = np.maximum(p1, 1 - p1)
    alone = curve_point(p1, p2, gold, 1.0)["accuracy"]
    cells = [f"{curve_point(p1, p2, gold, threshold_for_share(conf, s))['accuracy']:.4f}"
             for s in SHARES]
    within = next((s for s in np.arange(0, 1.001, 0.01)
                   if curve_point(p1, p2, gold, threshold_for_share(conf, s))["accuracy"]
                   >= alone - 0.003), 1.0)
    return cells + [f"{alone:.4f}", f"{within:.0%}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs=2)
    parser.add_argument("--accurate-cache", type=Path)
    parser.add_argument("--imdb-rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tweets", type=int, default=2000)
    args = parser.parse_args()
    from polarity import load_classifier
    from polarity.evaluate.setup import cpu

    sets = load_sets(args.imdb_rows)
    models = {m: load_classifier(m) for m in args.models}
    probs = {(m, s): np.asarray(clf.positive_probabilities(d.texts, 32))
             for m, clf in models.items() for s, d in sets.items()}
    speed = engine_speed(models, args.rounds, args.tweets)
    machine = cpu()
    print(f"CPU {machine['name']}, {machine['cores']} cores, "
          f"{', '.join(machine['extensions'])}; as load_classifier(name) runs each model")
    print("| model | " + " | ".join(f"{s} ({len(d.texts)}) acc / ECE" for s, d in sets.items())
          + " | engine texts/s (b32) |")
    print("|---|" + "---|" * (len(sets) + 1))
    for m in models:
        cells = [("{:.4f} / {:.3f}").format(*quality(probs[m, s], d.labels))
                 for s, d in sets.items()]
        print(f"| {models[m].info.name} {models[m].info.version} (`{m}`) | "
              + " | ".join(cells) + f" | {speed[m]:.0f} |")
    first, second = args.models
    print(f"\nengine {second} / {first}: {speed[second] / speed[first]:.2f}x")
    dev = sets["SST-2 dev"]
    p2 = accurate_on_dev(args.accurate_cache, dev.texts)
    print("\nCascade on SST-2 dev behind the accurate tier (accuracy by share sent on):")
    print("| first stage | " + " | ".join(f"{s:.0%}" for s in SHARES)
          + " | accurate alone | share within 0.3 points of it |")
    print("|---|" + "---|" * (len(SHARES) + 2))
    for m in models:
        print(f"| `{m}` | " + " | ".join(cascade_rows(probs[m, "SST-2 dev"], p2, dev.labels))
              + " |")


if __name__ == "__main__":
    main()
