"""A folder is replaced whole, or not at all."""

import pytest

from polarity.folders import replacing_folder


def test_the_new_folder_replaces_the_old_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with replacing_folder(target) as partial:
        (partial / "new.txt").write_text("new")
        assert (target / "old.txt").is_file()  # readers still see the old folder meanwhile
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert not (tmp_path / "model.partial").exists()


def test_a_failure_leaves_the_old_folder(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), replacing_folder(target) as partial:
        (partial / "half.txt").write_text("half")
        raise RuntimeError("killed midway")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
