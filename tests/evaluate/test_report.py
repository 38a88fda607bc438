import base64
import json

import pytest

from polarity.cli import main
from polarity.data.curated import curated_path
from polarity.evaluate.data import load_test_set
from polarity.evaluate.run import calibrate, evaluate


def test_curated_set_is_balanced_and_tagged():
    data = load_test_set(curated_path())
    assert len(data.texts) == 100 and data.labels.count("POSITIVE") == 50
    assert {"plain", "negation", "sarcasm", "mixed", "intensifiers_slang", "emoji", "jargon",
            "very_short", "very_long"} == set(data.categories)
    assert {"product", "social", "general"} == set(data.sources)


def test_bad_rows_are_reported_not_fatal(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text('{"text": "good stuff", "label": 1}\nnot json\n{"text": "", "label": 0}\n'
                 '{"text": "meh", "label": "neutral"}\n{"text": "awful", "label": "NEGATIVE"}\n')
    data = load_test_set(f)
    assert data.labels == ["POSITIVE", "NEGATIVE"] and len(data.bad_rows) == 3


def test_tsv_with_column_mapping(tmp_path):
    f = tmp_path / "t.tsv"
    f.write_text('sentence\ty\nit \'s "fine" and good\t1\nbad\t0\n')
    assert load_test_set(f, "sentence", "y").labels == ["POSITIVE", "NEGATIVE"]


def test_report_files_and_embedded_charts(trained_tiny, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rep"
    summary = evaluate([str(trained_tiny), "vader"], None, out, profile_performance=True,
                       progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == summary["accuracy"] and metrics["n"] == 100
    assert set(metrics["models"]) == {str(trained_tiny), "vader"}
    prof = metrics["models"]["vader"]["profile"]
    assert prof["latency_ms"]["p95"] >= prof["latency_ms"]["p50"] > 0
    html = (out / "report.html").read_text()
    png = (out / "charts").glob("*.png")
    assert len(list(png)) == 8
    assert html.count('src="data:image/png;base64,') == 8
    first = html.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(first)[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"{metrics['accuracy']:.4f}" in html
    assert f"{metrics['models']['vader']['metrics']['accuracy']:.4f}" in html
    assert "Error analysis" in html and "sarcasm" in html
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0] == "model,text,gold,predicted,confidence,latency_ms,category"
    assert len(rows) == 201
    assert (out / "report.md").read_text().startswith("# Sentiment evaluation")


def test_calibrate_stores_temperature(trained_tiny, tmp_path, toy_splits):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained_tiny, model)
    result = calibrate(str(model), toy_splits / "val.jsonl", progress=False)
    card = json.loads((model / "polarity.json").read_text())
    assert card["temperature"] == pytest.approx(result["temperature"])
    assert result["nll_after"] <= result["nll_before"] + 1e-9
    assert card["metrics"]["calibration"]["ece_after"] == result["ece_after"]


def test_calibrating_the_shipped_model_is_refused(capsys, toy_splits):
    assert main(["calibrate", "--model", "default", "--val-file",
                 str(toy_splits / "val.jsonl")]) == 2
    assert "not a writable model folder" in capsys.readouterr().err


def test_a_zero_width_row_is_a_bad_row_not_a_failed_evaluation(tmp_path):
    """One rule for a usable text (polarity.contract.text_problem) in evaluation files,
    training rows, batch and the service: a zero-width-only text passed .strip() here and
    then aborted the whole run inside the predictor."""
    import json

    from polarity.evaluate.data import load_test_set
    from polarity.train.data import load_labelled

    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"text": "good movie", "label": "POSITIVE"}, {"text": "\u200b\u200b", "label": "NEGATIVE"},
        {"text": "bad movie", "label": "NEGATIVE"}]))
    test = load_test_set(path)
    assert test.texts == ["good movie", "bad movie"]
    assert len(test.bad_rows) == 1 and "zero-width" in test.bad_rows[0]
    rows, bad = load_labelled(path)
    assert [r["text"] for r in rows] == ["good movie", "bad movie"] and bad == 1


def test_texts_are_written_inert_in_the_csv_and_the_markdown(tmp_path):
    import csv

    pytest.importorskip("matplotlib")
    pytest.importorskip("vaderSentiment")
    rows = [("=HYPERLINK(\"http://x.invalid\",\"click\") great", 1, "=cmd|' /C calc'!A0"),
            ("<script>alert(1)</script> awful", 1, "<b>html</b>"),
            ("@SUM(A1:A2) love it", 0, "plain"), ("-2+3 terrible", 1, "+x"),
            ("\tgood", 0, "-y")]
    f = tmp_path / "t.jsonl"
    f.write_text("".join(json.dumps({"text": t, "label": y, "category": c}) + "\n"
                         for t, y, c in rows))
    out = tmp_path / "rep"
    evaluate(["vader"], f, out, progress=False)
    with open(out / "predictions.csv", newline="", encoding="utf-8") as fh:
        written = list(csv.DictReader(fh))
    assert [r["text"] for r in written] == ["'" + t for t, _, _ in rows[:1]] + [
        rows[1][0], "'" + rows[2][0], "'" + rows[3][0], "'" + rows[4][0]]
    assert [r["category"] for r in written] == ["'=cmd|' /C calc'!A0", "<b>html</b>", "plain",
                                               "'+x", "'-y"]
    md = (out / "report.md").read_text()
    assert "<script>" not in md and "<b>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; awful" in md and "&lt;b&gt;html" in md
    page = (out / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)" in page
    assert "&amp;lt;" not in page  # escaped once, not twice


def test_calibrate_prints_a_summary_and_json_on_request(trained_tiny, tmp_path, toy_splits,
                                                        capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained_tiny, model)
    val = str(toy_splits / "val.jsonl")
    assert main(["calibrate", "--model", str(model), "--val-file", val]) == 0
    out = capsys.readouterr().out.splitlines()
    card = json.loads((model / "polarity.json").read_text())
    assert len(out) == 2 and out[0].startswith(f"temperature {card['temperature']:.4f}")
    assert out[1].startswith("ECE ") and "NLL" in out[1]
    assert main(["calibrate", "--model", str(model), "--val-file", val, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["val_rows"] == 64


def test_the_report_records_the_runtime_that_ran(trained_tiny, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["evaluate", "--model", str(trained_tiny), "--model", "vader",
                 "--report-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    setups = {name: m["setup"] for name, m in metrics["models"].items()}
    assert setups[str(trained_tiny)]["runtime"] == "onnx"  # auto: the runtime users get
    assert setups["vader"]["runtime"] == "python"
    assert "onnx backend, onnx runtime, int8" in printed
    assert "onnx runtime, int8" in (out / "report.md").read_text()
