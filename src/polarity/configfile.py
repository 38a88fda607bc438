"""Reading the YAML files in ``configs/``: one place that turns a missing file, broken YAML or
a file that is not a mapping into one line that says what to fix."""

from __future__ import annotations

from pathlib import Path

from polarity.errors import InputError


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """The mapping in a YAML file (an empty file is an empty mapping). ``what`` names its
    fields in the error, e.g. ``"TrainConfig fields"``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path} is not valid YAML{where}: {problem}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InputError(f"{path} must hold a mapping of {what}, "
                         f"not a {type(loaded).__name__}")
    return loaded
