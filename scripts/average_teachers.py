"""A teacher file that is the weighted mean of other teacher files (over the texts they all
scored), e.g. the CPU teacher and the shipped default as one teacher:

    python scripts/average_teachers.py data/teacher/mpnet.parquet data/teacher/minilm-v1.parquet \
        --weights 0.5 0.5 --output data/teacher/mpnet+minilm.parquet
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from polarity.data.teacher import average_teacher_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teachers", type=Path, nargs="+")
    parser.add_argument("--weights", type=float, nargs="+", help="one per file (default: equal)")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    weights = args.weights or [1.0] * len(args.teachers)
    print(json.dumps(average_teacher_files(args.teachers, weights, args.output), indent=2))


if __name__ == "__main__":
    main()
