"""A model folder and its card are checked when loaded: a card value no model can have, or a
file the card names that is missing, is one line naming it, before any weights load."""

import json
import shutil

import pytest

from polarity import load_classifier
from polarity.cli import main
from polarity.errors import ModelFolderError
from polarity.modelcard import CARD_NAME, check_folder, read_card
from polarity.predictor import default_model_path, packaged_models_path


def copy_of_default(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(default_model_path(), folder)
    return folder


def edit_card(folder, **fields):
    card = json.loads((folder / CARD_NAME).read_text())
    (folder / CARD_NAME).write_text(json.dumps({**card, **fields}))


@pytest.mark.parametrize("fields, message", [
    ({"temperature": -1}, "temperature: Input should be greater than 0"),
    ({"temperature": 0}, "temperature: Input should be greater than 0"),
    ({"temperature": "NaN"}, "temperature: Input should be a finite number"),
    ({"max_length": -5}, "max_length: Input should be greater than 0"),
    ({"max_length": 0}, "max_length: Input should be greater than 0"),
    ({"labels": ["NEGATIVE", "NEUTRAL", "POSITIVE"]}, "labels: must be"),
    ({"labels": ["POSITIVE", "NEGATIVE"]}, "labels: must be"),
])
def test_a_card_value_no_model_can_have_is_refused(tmp_path, fields, message):
    folder = copy_of_default(tmp_path)
    edit_card(folder, **fields)
    with pytest.raises(ModelFolderError, match=message):
        load_classifier(folder)


def test_a_folder_without_its_adapter_is_refused_before_loading(tmp_path):
    folder = copy_of_default(tmp_path)
    shutil.rmtree(folder / "adapter")
    with pytest.raises(ModelFolderError, match=r"adapter/adapter_config.json, "
                       r"adapter/adapter_model.safetensors are missing"):
        load_classifier(folder)
    (folder / "head.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="head.safetensors"):
        load_classifier(folder, runtime="torch")


def test_files_named_by_the_card_are_required(tmp_path):
    folder = copy_of_default(tmp_path)
    (folder / "long_texts.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="long_texts.safetensors is missing"):
        check_folder(folder, read_card(folder))
    edit_card(folder, backend="onnx", lora={},
              extra={"file": "model.int8.onnx", "quantize": "int8"})
    with pytest.raises(ModelFolderError, match="model.int8.onnx is missing"):
        check_folder(folder, read_card(folder))


def test_the_shipped_models_are_complete():
    for folder in [default_model_path(), *sorted(packaged_models_path().iterdir())]:
        check_folder(folder, read_card(folder))


def test_the_cli_says_it_in_one_line(tmp_path, capsys):
    folder = copy_of_default(tmp_path)
    shutil.rmtree(folder / "adapter")
    assert main(["analyze", "--model", str(folder), "fine"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "is incomplete: adapter/adapter_config.json" in err


def test_serve_refuses_a_broken_folder_before_any_server_starts(tmp_path, capsys, monkeypatch):
    import polarity.serve.run

    started = []
    monkeypatch.setattr(polarity.serve.run, "serve", started.append)
    monkeypatch.setenv("API_KEY", "a-key-for-this-test-0123456789")
    folder = copy_of_default(tmp_path)
    shutil.rmtree(folder / "adapter")
    assert main(["serve", "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "adapter" in err and not started
