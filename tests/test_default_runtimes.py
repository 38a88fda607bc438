"""How far the shipped default's two runtimes are apart: ONNX Runtime static int8 (what users
get) against PyTorch float32, on the first 200 sentences of SST-2 dev. The bound stated in
README.md ("How to use it") is the one asserted here."""

import csv
import os
from pathlib import Path

import pytest

from polarity import load_classifier

pytest.importorskip("onnxruntime")
# CI lays shared/ beside the clone; SST2_DEV_TSV points elsewhere (e.g. from a worktree).
DEV = Path(os.environ.get("SST2_DEV_TSV")
           or Path(__file__).resolve().parents[2] / "shared/data/sst2/dev.tsv")
MAX_GAP, MAX_LABELS = 0.15, 5  # measured: 0.140 and 4 of 200


@pytest.mark.skipif(not DEV.is_file(), reason=f"no SST-2 dev copy at {DEV}")
def test_int8_and_torch_agree_within_the_stated_bound():
    with DEV.open(encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f, delimiter="\t")][:200]
    int8 = load_classifier("default")
    assert int8.info.backend == "onnx"
    got = int8.predict(texts, batch_size=32)
    expected = load_classifier("default", runtime="torch").predict(texts, batch_size=32)
    gaps = [abs(a.scores["POSITIVE"] - b.scores["POSITIVE"])
            for a, b in zip(got, expected, strict=True)]
    labels = sum(a.label != b.label for a, b in zip(got, expected, strict=True))
    assert len(texts) == 200
    assert max(gaps) <= MAX_GAP and labels <= MAX_LABELS, (max(gaps), labels)
    assert max(gaps) > 1e-3  # the two runtimes really are different numerics
