"""YAML config files: every way a file can be wrong ends in one line naming the fix."""

import pytest

from polarity.configfile import read_yaml_mapping
from polarity.errors import InputError


def test_a_mapping_is_read_and_an_empty_file_is_empty(tmp_path):
    (tmp_path / "a.yaml").write_text("seed: 3\nlora:\n  r: 8\n")
    assert read_yaml_mapping(tmp_path / "a.yaml", "fields") == {"seed": 3, "lora": {"r": 8}}
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert read_yaml_mapping(tmp_path / "empty.yaml", "fields") == {}


@pytest.mark.parametrize("content, message", [
    ("seed: [1, 2\n", r"not valid YAML at line 2, column 1"),
    ("- 1\n- 2\n", "must hold a mapping of TrainConfig fields, not a list"),
    (b"seed: \xff\n", "not UTF-8 text"),
])
def test_broken_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=message) as exc:
        read_yaml_mapping(path, "TrainConfig fields")
    assert "\n" not in str(exc.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="config file not found: .*nope.yaml"):
        read_yaml_mapping(tmp_path / "nope.yaml", "fields")
