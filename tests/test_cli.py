import argparse
import io
import json
from pathlib import Path

import pytest

from polarity.cli import main


def test_analyze_json_from_arguments(trained_tiny, capsys):
    assert main(["analyze", "--model", str(trained_tiny), "--json", "so great movie",
                 "awful phone was"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in lines] == ["so great movie", "awful phone was"]
    for row in lines:
        assert set(row) == {"text", "predicted_sentiment", "confidence", "scores", "reasoning",
                            "windows", "tier", "escalation"}  # the one JSON shape, as the API
        assert row["tier"] == "fast" and row["escalation"] is None
        assert row["predicted_sentiment"] in ("POSITIVE", "NEGATIVE")


def test_analyze_from_stdin_answers_every_line(trained_tiny, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("great movie\n\nawful movie\n \u200b\n"))
    assert main(["analyze", "--model", str(trained_tiny)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert len(out) == 4 and out[0].endswith("great movie") and out[2].endswith("awful movie")
    assert out[1] == "ERROR\t-\t" and out[3].startswith("ERROR\t-\t")
    assert "2 stdin line(s) had no text to classify (line(s) 2, 4)" in captured.err
    monkeypatch.setattr("sys.stdin", io.StringIO("\ngreat movie\n"))
    assert main(["analyze", "--model", str(trained_tiny), "--json"]) == 0
    first, second = map(json.loads, capsys.readouterr().out.splitlines())
    assert first == {"text": "", "error": "text is empty or only whitespace, control or "
                                          "zero-width characters"}
    assert second["text"] == "great movie" and "predicted_sentiment" in second
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n"))
    assert main(["analyze", "--model", str(trained_tiny)]) == 2


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


def test_every_command_prints_its_help():
    # Field docs become --help texts, and argparse reads a lone "%" in them as a format.
    from polarity.cli import build_parser

    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    for name, sub in commands.items():
        assert sub.format_help(), name


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"polarity {command}: error:") and "\n" not in err, err
    return err


def test_broken_config_files_and_flags_are_one_line_errors(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [csv:x.csv\n")
    for command in ("prepare", "train", "serve"):
        assert main([command, "--config", str(bad)]) == 2
        assert "not valid YAML at line 2" in _one_line_error(capsys, command)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    assert main(["prepare", "--config", str(listed)]) == 2
    assert "must hold a mapping of PrepareConfig fields" in _one_line_error(capsys, "prepare")
    src = tmp_path / "t.csv"
    src.write_text("text,label\nnice and fine,1\n")
    for split in ("a,b", "0.5,0.5"):
        assert main(["prepare", "--source", f"csv:{src}", "--split", split]) == 2
        assert "three fractions" in _one_line_error(capsys, "prepare")
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--batch-size", "0", "text"])
    assert exc.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_file_system_errors_are_one_line(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["evaluate", "--model", "vader", "--report-dir", str(blocker / "report")]) == 1
    assert "a-file" in _one_line_error(capsys, "evaluate")


def test_stdin_streams_and_stops_at_a_line_that_is_not_utf8(trained_tiny, capsys, monkeypatch):
    raw = b"great movie\n\xff\xfe broken\nawful movie\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert main(["analyze", "--model", str(trained_tiny)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith("great movie")  # printed before the stop
    assert "stdin line 2 is not UTF-8" in captured.err


def test_stdin_is_read_in_chunks_so_large_input_streams():
    from polarity.cli.model import _stdin_chunks

    raw = "\ufeffline 0\n" + "".join(f"line {i}\r\n\n" for i in range(1, 11))
    chunks = list(_stdin_chunks(io.BytesIO(raw.encode()), 8))
    assert [len(c) for c in chunks] == [8, 8, 5]  # blank lines too: each gets an answer
    assert sum(chunks, []) == ["line 0"] + [x for i in range(1, 11) for x in (f"line {i}", "")]


def test_export_never_overwrites_the_model_or_a_foreign_folder(trained_tiny, capsys, tmp_path):
    before = sorted(p.name for p in trained_tiny.iterdir())
    assert main(["export", "--model", str(trained_tiny), "--onnx",
                 "--output", str(trained_tiny)]) == 2
    assert "would overwrite the model" in _one_line_error(capsys, "export")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["export", "--model", str(trained_tiny), "--onnx", "--output", str(mine)]) == 2
    assert "not an earlier output" in _one_line_error(capsys, "export")
    assert sorted(p.name for p in trained_tiny.iterdir()) == before
    assert (mine / "notes.txt").read_text() == "keep me"


def test_batch_where_no_row_can_be_scored_fails(trained_tiny, capsys, tmp_path):
    src = tmp_path / "in.csv"  # a header without the column: refused before any output
    src.write_text("body\nhello there\n")
    assert main(["batch", "--model", str(trained_tiny), "--input", str(src), "--output",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    assert "no column 'text'; it has ['body']" in _one_line_error(capsys, "batch")
    assert not (tmp_path / "out").exists()
    src = tmp_path / "in.jsonl"  # JSON lines have no header: every row is reported
    src.write_text('{"body": "hello there"}\n')
    assert main(["batch", "--model", str(trained_tiny), "--input", str(src), "--output",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    err = _one_line_error(capsys, "batch")
    assert "no row could be scored" in err and "column 'text' is missing" in err
    assert (tmp_path / "out" / "_errors.jsonl").read_text().count("\n") == 1


def test_interrupted_training_says_how_to_resume(tiny_encoder, toy_splits, tmp_path, capsys,
                                                  monkeypatch):
    import polarity.train.run

    def interrupted(config, resume=None, command=""):
        # Ctrl-C after the loop saved its first checkpoint.
        (tmp_path / "m" / "checkpoints" / "step-0000004").mkdir(parents=True)
        (tmp_path / "m" / "checkpoints" / "step-0000004" / "state.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(polarity.train.run, "train", interrupted)
    assert main(["train", "--base-model", str(tiny_encoder), "--train-file",
                 str(toy_splits / "train.jsonl"), "--output-dir", str(tmp_path / "m")]) == 130
    assert "--resume" in capsys.readouterr().err


def test_keys_default_to_make_serves_file_refuse_a_taken_name_and_revoke_one(
        tmp_path, monkeypatch, capsys):
    from polarity.cli.ops import KEYS_FILE
    from polarity.serve.security import create_key, read_keys

    monkeypatch.chdir(tmp_path)
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    assert f"KEYS_FILE := {KEYS_FILE}" in makefile  # the file make serve writes and serves
    assert main(["keys", "create", "--name", "alice"]) == 0
    assert main(["keys", "list"]) == 0
    key, listed = capsys.readouterr().out.splitlines()  # create's key, then list's line
    assert key.startswith("pk_") and listed.split()[1:] == ["alice"]
    assert main(["keys", "create", "--name", "alice"]) == 2
    assert "already in .polarity/api_keys.txt" in capsys.readouterr().err
    assert [n for _, n in read_keys(KEYS_FILE)] == ["alice"]

    create_key(KEYS_FILE, "alice")  # a file from before names were unique
    create_key(KEYS_FILE, "bob")
    assert main(["keys", "revoke", "alice"]) == 2
    assert "2 keys in .polarity/api_keys.txt are named 'alice'" in capsys.readouterr().err
    assert [n for _, n in read_keys(KEYS_FILE)] == ["alice", "alice", "bob"]
    first = read_keys(KEYS_FILE)[0][0][:12]
    assert main(["keys", "revoke", first]) == 0 and main(["keys", "revoke", "bob"]) == 0
    assert [n for _, n in read_keys(KEYS_FILE)] == ["alice"]


def test_help_names_what_the_commands_take():
    from polarity.cli import build_parser
    from polarity.predictor import kept_model_names
    from polarity.pull import RELEASES

    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"accurate", "cascade", "minilm-v1"} <= set(kept_model_names())
    for name in ("analyze", "batch", "evaluate", "serve"):
        text = " ".join(commands[name].format_help().split())
        for model in ("default", "vader", *kept_model_names(), *RELEASES):
            assert model in text, (name, model)
    export = " ".join(commands["export"].format_help().split())
    assert "static int8" in export and "dynamic" not in export and "--calibration-file" in export
