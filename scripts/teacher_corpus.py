"""The accurate tier's labelling corpus, in the order its labels pay (polarity.data.selection):
a random sample first, then the texts today's teachers are unsure of, disagree on or get
wrong, each shard's rows sorted by length.

    python scripts/teacher_corpus.py data/default/train.jsonl data/distill/augmented.jsonl \
        --teachers data/teacher/mpnet.parquet data/teacher/minilm-v1.parquet \
        --output data/distill/teacher_corpus.jsonl --sample 4000 --chunk 1000

Every text must be scored in every teacher file (the prepared train split and the first
30,000 augmented texts are: data/teacher/README.md). Rows keep their gold label (null for
augmented texts), their source, their informativeness and their block (``sample`` or
``ranked``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq

from polarity.data.selection import informativeness, labelling_order, length_sorted_chunks
from polarity.data.teacher import text_key
from polarity.data.writers import read_rows
from polarity.preprocess import emoji_to_words


def has_emoji(text: str) -> bool:
    return emoji_to_words(text) != " ".join(text.split())


def teacher_map(path: Path) -> dict[int, float]:
    table = pq.read_table(path)
    return dict(zip(table.column("key").to_pylist(), table.column("p_positive").to_pylist(),
                    strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="prepared or augmented JSONL")
    parser.add_argument("--teachers", nargs="+", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=4000)
    parser.add_argument("--chunk", type=int, default=1000, help="rows per batch shard")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    teachers = [teacher_map(p) for p in args.teachers]
    rows, seen = [], set()
    for path in args.inputs:
        for row in read_rows(path):
            key = text_key(row["text"])
            if key in seen:
                continue
            seen.add(key)
            probs = [t[key] for t in teachers]  # KeyError: a text no teacher scored
            score = informativeness(probs, row.get("label"), len(row["text"]),
                                    has_emoji(row["text"]))
            rows.append({"text": row["text"], "label": row.get("label"),
                         "source": row.get("source", path.stem),
                         "informativeness": round(score, 4)})
    order = labelling_order([r["informativeness"] for r in rows], args.sample, args.seed)
    block = {i: ("sample" if n < args.sample else "ranked") for n, i in enumerate(order)}
    order = length_sorted_chunks(order, [len(r["text"]) for r in rows], args.chunk)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w") as out:
        for i in order:
            out.write(json.dumps({**rows[i], "block": block[i]}, ensure_ascii=False) + "\n")
    ranked = [rows[i]["informativeness"] for i in order if block[i] == "ranked"]
    print(json.dumps({"rows": len(rows), "sample": args.sample, "output": str(args.output),
                      "informativeness_over_0.5": sum(v > 0.5 for v in ranked),
                      "emoji": sum(v == 1.0 for v in ranked)}))


if __name__ == "__main__":
    main()
