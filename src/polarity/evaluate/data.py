"""Test files for evaluation: JSONL, CSV or TSV with text, label and optional source and
category. Bad rows are counted and reported, never fatal."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from polarity.contract import text_problem
from polarity.data.curated import curated_path
from polarity.data.tables import iter_rows
from polarity.errors import InputError
from polarity.labels import LabelError, parse_label


@dataclass
class TestSet:
    name: str
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    sources: list[str | None] = field(default_factory=list)
    categories: list[str | None] = field(default_factory=list)
    bad_rows: list[str] = field(default_factory=list)  # "line N: reason"


def load_test_set(path: str | Path | None = None, text_column: str = "text",
                  label_column: str = "label") -> TestSet:
    if str(path or "").startswith("hf:"):
        return _hub_test_set(str(path))
    path = Path(path) if path else curated_path()
    if not path.is_file():
        raise InputError(f"test file not found: {path}")
    out = TestSet(path.name)
    rows = iter_rows(path, required=(text_column, label_column),
                     hint="Use --text-column/--label-column.")
    for row in rows:
        if row.fields is None:
            out.bad_rows.append(f"line {row.line}: {row.problem}")
        else:
            _add(out, row.line, row.fields, text_column, label_column)
    if not out.texts:
        raise InputError(f"{path} has no usable rows ({len(out.bad_rows)} bad)")
    return out


def _hub_test_set(spec: str) -> TestSet:
    """A test set from a data set source, e.g. ``hf:stanfordnlp/sst2?split=validation&
    text_column=sentence`` (with ``local_copy=tsv:...`` for machines without the hub)."""
    from polarity.data.inputs import iter_source
    from polarity.data.sources import Record, SourceSpec

    parsed = SourceSpec.parse(spec)
    out = TestSet(parsed.path.rstrip("/").rsplit("/", 1)[-1] + f"-{parsed.split}")
    for item in iter_source(parsed):
        if isinstance(item, Record):
            out.texts.append(item.text)
            out.labels.append(item.label)
            out.sources.append(None)
            out.categories.append(None)
        else:
            out.bad_rows.append(f"{item.where}: {item.reason}")
    if not out.texts:
        raise InputError(f"{spec} has no usable rows ({len(out.bad_rows)} bad)")
    return out


def _add(out: TestSet, n: int, row: dict, text_column: str, label_column: str) -> None:
    text = row.get(text_column)
    problem = text_problem(text) if text is not None else "is missing"
    if problem:
        out.bad_rows.append(f"line {n}: {text_column!r} {problem}")
        return
    try:
        label = parse_label(row.get(label_column))
    except LabelError as exc:
        out.bad_rows.append(f"line {n}: {exc}")
        return
    out.texts.append(text)
    out.labels.append(label)
    out.sources.append(row.get("source"))
    out.categories.append(row.get("category"))
