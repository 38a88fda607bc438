"""A teacher file (``data/teacher/NAME.parquet``) from a ``polarity batch`` output: each
distinct text's P(POSITIVE), keyed by its hash, with the teacher's provenance.

    python scripts/teacher_file.py data/distill/scored-mpnet data/teacher/mpnet.parquet \
        --report reports/teacher-dev/metrics.json --command "polarity batch ..."
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from polarity.data.teacher import write_teacher_file
from polarity.data.writers import read_rows
from polarity.evaluate.setup import cpu
from polarity.modelcard import read_card
from polarity.predictor import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scored", type=Path, help="a polarity batch output folder")
    parser.add_argument("output", type=Path)
    parser.add_argument("--report", type=Path, help="metrics.json of the teacher on SST-2 dev")
    parser.add_argument("--command", default="", help="the polarity batch command that scored")
    parser.add_argument("--runtime", default="", help="the runtime that scored, e.g. "
                        "'ctranslate2 int8, 2 threads'")
    parser.add_argument("--seconds", type=float, help="wall-clock seconds the scoring took")
    parser.add_argument("--block", help="keep only rows of this corpus block (e.g. sample)")
    args = parser.parse_args()
    manifest = json.loads((args.scored / "_batch.json").read_text())
    texts, probs = [], []
    for row in read_rows(args.scored):
        if args.block and row.get("block") != args.block:
            continue
        texts.append(row["text"])
        probs.append(row["scores"]["POSITIVE"])
    card = read_card(resolve_model(manifest["model"]))
    provenance = {"model": card.name, "model_folder": manifest["model"],
                  "base_model": card.base_model, "validation": card.metrics.get("validation"),
                  "version": card.version, "runtime": args.runtime, "cpu": cpu(),
                  "seconds": args.seconds, "input": manifest["input"], "rows": len(texts),
                  "input_rows": manifest.get("rows"), "command": args.command,
                  "date": datetime.datetime.now(datetime.UTC).isoformat()}
    if args.report:
        report = json.loads(args.report.read_text())
        model = report["models"][manifest["model"]]
        provenance["sst2_dev"] = {"accuracy": model["metrics"]["accuracy"],
                                  "setup": {k: model["setup"][k] for k in
                                            ("backend", "dtype", "model_sha256")}}
    print(json.dumps(write_teacher_file(texts, probs, args.output, provenance), indent=2))


if __name__ == "__main__":
    main()
