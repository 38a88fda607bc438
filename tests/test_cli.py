import io
import json

import pytest

from polarity.cli import main


def test_analyze_json_from_arguments(trained_tiny, capsys):
    assert main(["analyze", "--model", str(trained_tiny), "--json", "so great movie",
                 "awful phone was"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in lines] == ["so great movie", "awful phone was"]
    for row in lines:
        assert set(row) == {"text", "predicted_sentiment", "confidence", "scores"}
        assert row["predicted_sentiment"] in ("POSITIVE", "NEGATIVE")


def test_analyze_from_stdin(trained_tiny, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("great movie\n\nawful movie\n"))
    assert main(["analyze", "--model", str(trained_tiny)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].endswith("great movie")


def test_errors_are_one_line_and_nonzero(capsys, tmp_path):
    assert main(["analyze", "--model", str(tmp_path), "text"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("polarity analyze: error:") and "\n" not in err
    assert main(["prepare"]) == 2
    assert "--source" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_prepare_then_train_through_the_cli(tiny_encoder, tmp_path, capsys):
    from helpers import synthetic_rows

    src = tmp_path / "raw.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows(120)))
    assert main(["prepare", "--source", f"jsonl:{src}", "--output-dir", str(tmp_path / "d")]) == 0
    stats = json.loads((tmp_path / "d" / "stats.json").read_text())
    assert stats["rows_out"] == 120
    data = tmp_path / "d"
    assert main(["train", "--base-model", str(tiny_encoder), "--train-file",
                 str(data / "train.jsonl"), "--val-file", str(data / "val.jsonl"),
                 "--output-dir", str(tmp_path / "m"), "--max-steps", "3"]) == 0
    card = json.loads((tmp_path / "m" / "polarity.json").read_text())
    assert card["training"]["command"].startswith("polarity train")
    assert card["training"]["data"]["prepare"]["rows"]["jsonl"]["rows_out"] == 120


def test_help_is_instant():
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
