"""End to end on a tiny encoder: train -> save -> load -> predict, and exact resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import synthetic_rows, tiny_train_config
from safetensors.torch import load_file

from polarity.errors import InputError
from polarity.predictor import load_classifier
from polarity.train.data import epoch_batches
from polarity.train.recipe import fit
from polarity.train.run import train


def test_trained_model_folder_describes_itself(trained_tiny):
    card = json.loads((trained_tiny / "polarity.json").read_text())
    assert card["backend"] == "encoder" and card["labels"] == ["NEGATIVE", "POSITIVE"]
    assert Path(card["base_model"]).is_absolute()
    assert card["training"]["data"]["train_file"].endswith("train.jsonl")
    assert card["metrics"]["validation"]["accuracy"] >= 0.8  # chance is 0.5
    assert (trained_tiny / "adapter" / "adapter_config.json").is_file()
    assert (trained_tiny / "head.safetensors").is_file()
    log = [json.loads(line) for line in (trained_tiny / "train_log.jsonl").read_text().split("\n")
           if line]
    assert {"start", "train", "eval", "done"} <= {r["event"] for r in log}


def test_load_and_predict_the_trained_model(trained_tiny):
    clf = load_classifier(trained_tiny, runtime="torch")
    rows = synthetic_rows(40, seed=99)
    preds = clf.predict([r["text"] for r in rows], batch_size=8)
    accuracy = sum(p.label == r["label"] for p, r in zip(preds, rows, strict=True)) / len(rows)
    assert accuracy >= 0.8
    for p in preds:
        assert p.label in ("POSITIVE", "NEGATIVE")
        assert 0.5 <= p.confidence <= 1.0
        assert abs(sum(p.scores.values()) - 1.0) < 1e-6
        assert p.scores[p.label] == p.confidence and p.reasoning is None


def test_batch_size_does_not_change_results(trained_tiny):
    clf = load_classifier(trained_tiny, runtime="torch")
    texts = [r["text"] for r in synthetic_rows(12, seed=5)]
    a = [p.scores["POSITIVE"] for p in clf.predict(texts, batch_size=1)]
    b = [p.scores["POSITIVE"] for p in clf.predict(texts, batch_size=12)]
    assert a == pytest.approx(b, abs=1e-5)


def test_best_checkpoints_are_kept_and_rotated(tiny_encoder, toy_splits, tmp_path):
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path, eval_steps=2, num_epochs=1,
                               save_total_limit=2)
    fit(_task(config), config)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert 2 <= len(kept) <= 3  # two best + the latest when it is not among them
    assert "step-0000016" in kept  # 256 rows / 16 = 16 steps: the final step is the latest


def test_early_stopping_stops_before_the_end(tiny_encoder, toy_splits, tmp_path):
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path, eval_steps=1, num_epochs=3,
                               learning_rate=0.0, early_stopping_patience=2)
    fit(_task(config), config)
    card = json.loads((tmp_path / "polarity.json").read_text())
    assert card["training"]["stopped_early"] and card["training"]["steps"] == 3


def _task(config):
    from polarity.train.recipe import build_task

    return build_task(config)


class Crash(Exception):
    pass


def crashing_after(task, batches: int):
    """``task`` whose loss raises :class:`Crash` once ``batches`` batches have run."""
    original, calls = task.batch_loss, []

    def batch_loss(rows):
        calls.append(1)
        if len(calls) > batches:
            raise Crash
        return original(rows)

    task.batch_loss = batch_loss
    return task


def test_resume_after_a_crash_gives_identical_weights(tiny_encoder, toy_splits, tmp_path):
    splits = shutil.copytree(toy_splits, tmp_path / "splits")  # its rows are changed below
    whole = tiny_train_config(tiny_encoder, splits, tmp_path / "whole", eval_steps=5,
                              max_steps=20)
    fit(_task(whole), whole)

    broken = tiny_train_config(tiny_encoder, splits, tmp_path / "broken", eval_steps=5,
                               max_steps=20)
    with pytest.raises(Crash):
        fit(crashing_after(_task(broken), 13), broken)
    with pytest.raises(InputError, match="resume"):
        fit(_task(broken), broken)  # refuses to overwrite a run silently
    other = broken.model_copy(update={"batch_size": 4, "learning_rate": 0.5})
    with pytest.raises(InputError, match=r"other settings \(batch_size was 16, now 4; "
                                         r"learning_rate was 0.01, now 0.5\)"):
        fit(_task(other), other, resume="last")  # would not continue the same run
    rows = Path(broken.train_file).read_text()
    Path(broken.train_file).write_text(rows.replace("great", "good", 1))
    with pytest.raises(InputError, match=r"other settings \(train_file_sha256 was "):
        fit(_task(broken), broken, resume="last")  # the same name, other rows
    Path(broken.train_file).write_text(rows)
    fit(_task(broken), broken, resume="last")

    final = Path("checkpoints") / "step-0000020" / "trainable.safetensors"
    a = load_file(str(tmp_path / "whole" / final))
    b = load_file(str(tmp_path / "broken" / final))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_checkpoints_by_time_between_evaluations_resume_exactly(tiny_encoder, toy_splits,
                                                                 tmp_path):
    """checkpoint_minutes saves between evaluations (here: after every step), a crash
    resumes from the step before it, and the result equals an uninterrupted run's."""
    whole = tiny_train_config(tiny_encoder, toy_splits, tmp_path / "whole", eval_steps=10,
                              max_steps=20, checkpoint_minutes=None)
    fit(_task(whole), whole)
    broken = tiny_train_config(tiny_encoder, toy_splits, tmp_path / "broken", eval_steps=10,
                               max_steps=20, checkpoint_minutes=1e-9)
    with pytest.raises(Crash):
        fit(crashing_after(_task(broken), 13), broken)
    saved = sorted(p.name for p in (tmp_path / "broken" / "checkpoints").iterdir())
    assert saved == ["step-0000010", "step-0000013"]  # the best and the latest only
    fit(_task(broken), broken, resume="last")
    final = Path("checkpoints") / "step-0000020" / "trainable.safetensors"
    a = load_file(str(tmp_path / "whole" / final))
    b = load_file(str(tmp_path / "broken" / final))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_sigkill_then_resume_finishes(tiny_encoder, toy_splits, tmp_path):
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path / "run", eval_steps=2,
                               max_steps=30)
    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(config.model_dump_json())
    script = ("import sys, json; from polarity.train.config import TrainConfig;"
              "from polarity.train.run import train;"
              "c = TrainConfig.model_validate_json(open(sys.argv[1]).read());"
              "train(c, resume=sys.argv[2] if len(sys.argv) > 2 else None)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", script, str(cfg_file)], env=env)
    ckpts = tmp_path / "run" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not list(ckpts.glob("step-0000004")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "polarity.json").exists(), "run finished before the kill"
    subprocess.run([sys.executable, "-c", script, str(cfg_file), "last"], env=env, check=True)
    card = json.loads((tmp_path / "run" / "polarity.json").read_text())
    assert card["training"]["steps"] == 30
    log = (tmp_path / "run" / "train_log.jsonl").read_text()
    assert log.count('"event": "start"') == 2


def test_epoch_batches_cover_every_row_once_and_group_lengths():
    rows = [{"text": "x" * (i % 37 + 1)} for i in range(1000)]
    batches = epoch_batches(rows, 10, seed=3)
    flat = sorted(int(i) for b in batches for i in b)
    assert flat == list(range(1000))
    spread = sum(max(len(rows[i]["text"]) for i in b) - min(len(rows[i]["text"]) for i in b)
                 for b in batches) / len(batches)
    assert spread < 5  # random batches would spread over ~30 characters
    assert [list(b) for b in batches] == [list(b) for b in epoch_batches(rows, 10, seed=3)]


def test_bad_training_rows_are_counted_not_fatal(tiny_encoder, tmp_path, capsys):
    rows = synthetic_rows(32) + [{"text": "", "label": "POSITIVE"}, {"text": "x", "label": "meh"}]
    broken = '{"text": "cut off mid-row\n[1, 2]\n'
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + broken)
    (tmp_path / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:8]))
    config = tiny_train_config(tiny_encoder, tmp_path, tmp_path / "out", max_steps=2)
    train(config)
    start = json.loads((tmp_path / "out" / "train_log.jsonl").read_text().split("\n")[0])
    assert start["skipped_train_rows"] == 4 and start["train_rows"] == 32
    assert "skipped 4 bad training row(s)" in capsys.readouterr().err


def test_csv_training_file_says_how_to_convert_it(tiny_encoder, tmp_path):
    (tmp_path / "train.csv").write_text("text,label\ngreat,1\n")
    config = tiny_train_config(tiny_encoder, tmp_path, tmp_path / "out", max_steps=1)
    config.train_file = tmp_path / "train.csv"
    with pytest.raises(InputError, match="polarity prepare --source csv:"):
        train(config)


def test_sources_and_min_chars_select_rows_for_training_and_validation(tiny_encoder, tmp_path):
    rows = [{**r, "source": "a" if i % 2 else "b"} for i, r in enumerate(synthetic_rows(40))]
    rows += [{"text": "short", "label": "POSITIVE", "source": "a"}]
    for name in ("train", "val"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tiny_train_config(tiny_encoder, tmp_path, tmp_path / "out", max_steps=1,
                               sources=["a"], min_chars=6)
    train(config)
    start = json.loads((tmp_path / "out" / "train_log.jsonl").read_text().split("\n")[0])
    wanted = sum(r["source"] == "a" and len(r["text"]) >= 6 for r in rows)
    assert wanted == 20
    assert start["train_rows"] == start["val_rows"] == wanted
    assert start["skipped_train_rows"] == 0  # left out by choice, not bad
    with pytest.raises(InputError, match="matching sources"):
        train(tiny_train_config(tiny_encoder, tmp_path, tmp_path / "none", sources=["zzz"]))


@pytest.mark.parametrize("method", ["lora", "full"])
def test_warm_start_begins_where_the_saved_model_ended(trained_tiny, tiny_encoder, toy_splits,
                                                       tmp_path, method):
    # full: the saved LoRA adapter is merged into the weights that will train
    from polarity.train.recipe import build_task

    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path, init_from=trained_tiny,
                               method=method)
    task = build_task(config)
    task.model.eval()
    rows = synthetic_rows(32, seed=11)
    saved = load_classifier(trained_tiny, runtime="torch")
    expected = [p.scores["POSITIVE"] for p in saved.predict([r["text"] for r in rows])]
    with torch.no_grad():
        enc = task._encode(rows)
        got = torch.softmax(task.model(enc["input_ids"], enc["attention_mask"]), -1)[:, 1]
    assert got.tolist() == pytest.approx(expected, abs=1e-4)


def test_without_validation_the_last_checkpoint_is_kept(tiny_encoder, toy_splits, tmp_path):
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path, val_file=None, max_steps=4,
                               eval_steps=2)
    fit(_task(config), config)
    card = json.loads((tmp_path / "polarity.json").read_text())
    assert card["metrics"]["validation"]["best_step"] == 4


def test_the_first_losses_of_the_tiny_encoder_are_pinned(tiny_encoder, toy_splits, tmp_path):
    """A change to the data order, the schedule, the initialisation or the loss shows here
    first (values recorded on a 2-core AMD EPYC; fp32 math on another CPU agrees to 1e-4)."""
    from polarity.train.recipe import build_task

    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path, max_steps=6, eval_steps=6)
    task, losses = build_task(config), []
    original = task.batch_loss

    def recorded(rows):
        loss = original(rows)
        losses.append(loss.item())
        return loss

    task.batch_loss = recorded
    fit(task, config)
    assert losses == pytest.approx([0.630145, 0.604172, 0.674289, 0.57798, 0.912045, 0.595417],
                                   abs=1e-4)


def test_resuming_never_unpickles_code_from_a_checkpoint(tmp_path, monkeypatch):
    import pickle

    from polarity.train.checkpoint import TrainerState, load_checkpoint, save_checkpoint

    class Payload:
        def __reduce__(self):
            return (exec, ("open('PWNED', 'w').write('x')",))

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    folder = save_checkpoint(tmp_path, model, optimizer, scheduler, TrainerState(step=3))
    assert load_checkpoint(folder, model, optimizer, scheduler).step == 3  # the real format
    (folder / "optimizer.pt").write_bytes(pickle.dumps({"optimizer": Payload()}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(folder, model, optimizer, scheduler)
    assert not (tmp_path / "PWNED").exists()
