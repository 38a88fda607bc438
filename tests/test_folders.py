"""A folder is replaced whole, or not at all."""

import pytest

from polarity.errors import InputError
from polarity.folders import replacing_folder


def test_the_new_folder_replaces_the_old_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    (target / "polarity.json").write_text("{}")
    with replacing_folder(target) as partial:
        (partial / "new.txt").write_text("new")
        assert (target / "old.txt").is_file()  # readers still see the old folder meanwhile
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert not (tmp_path / "model.partial").exists()


def test_a_failure_leaves_the_old_folder(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "polarity.json").write_text("{}")
    with pytest.raises(RuntimeError), replacing_folder(target) as partial:
        (partial / "half.txt").write_text("half")
        raise RuntimeError("killed midway")
    assert [p.name for p in target.iterdir()] == ["polarity.json"]


def test_a_folder_that_is_not_an_earlier_output_is_never_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an earlier output"), replacing_folder(tmp_path):
        pass
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path.parent / (tmp_path.name + ".partial")).exists()
    with pytest.raises(InputError, match="not a folder"), replacing_folder(tmp_path / "notes.txt"):
        pass


def test_an_empty_folder_or_another_marker_is_replaced(tmp_path):
    (tmp_path / "empty").mkdir()
    with replacing_folder(tmp_path / "empty") as partial:
        (partial / "a.txt").write_text("a")
    assert (tmp_path / "empty" / "a.txt").is_file()
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    with replacing_folder(tmp_path / "hf", marker="config.json") as partial:
        (partial / "config.json").write_text('{"new": 1}')
    assert "new" in (tmp_path / "hf" / "config.json").read_text()
