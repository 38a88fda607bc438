import pytest

from polarity.data.teacher import (
    average_teacher_files,
    read_teacher_file,
    teacher_provenance,
    text_key,
    write_teacher_file,
)
from polarity.errors import InputError


def test_an_averaged_teacher_covers_the_texts_both_scored(tmp_path):
    a, b, out = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "ab.parquet"
    write_teacher_file(["good", "bad", "only a"], [0.9, 0.2, 0.5], a, {"model": "A"})
    write_teacher_file(["good", "bad", "only b"], [0.5, 0.0, 0.5], b, {"model": "B"})
    summary = average_teacher_files([a, b], [3, 1], out)
    probs = read_teacher_file(out)
    assert summary["rows"] == len(probs) == 2
    assert probs[text_key("good")] == pytest.approx(0.8) and probs[text_key("bad")] == \
        pytest.approx(0.15)
    parents = teacher_provenance(out)["average_of"]
    assert [(p["model"], p["weight"]) for p in parents] == [("A", 3), ("B", 1)]
    with pytest.raises(InputError, match="two or more"):
        average_teacher_files([a], [1], out)
