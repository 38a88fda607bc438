"""The student's training file: a prepared train split plus the unlabelled texts (from
`polarity augment`) that a teacher file has probabilities for.

    python scripts/student_data.py data/default/train.jsonl data/distill/augmented.jsonl \
        data/teacher/mpnet.parquet --output data/distill/student_train.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from polarity.data.teacher import read_teacher_file, text_key
from polarity.data.writers import read_rows
from polarity.folders import write_atomically


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path)
    parser.add_argument("augmented", type=Path)
    parser.add_argument("teacher", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    keys = read_teacher_file(args.teacher)
    train = list(read_rows(args.train))
    extra = [r for r in read_rows(args.augmented) if text_key(r["text"]) in keys]
    write_atomically(args.output, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                          for r in train + extra))
    print(f"{len(train)} training rows + {len(extra)} augmented texts -> {args.output}")


if __name__ == "__main__":
    main()
