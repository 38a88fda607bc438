"""The Qwen2 tier's training recipe on a tiny random Qwen2: masked loss, LoRA on the reference
modules, save -> load -> predict, merge."""

import json

import pytest
import torch
from helpers import synthetic_rows, write_jsonl

from polarity.predictor import load_classifier
from polarity.train.config import TrainConfig
from polarity.train.run import train

REFERENCE_MODULES = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def config(tiny_qwen, data, out, **overrides) -> TrainConfig:
    fields = dict(backend="causal_lm", base_model=str(tiny_qwen), train_file=data / "train.jsonl",
                  val_file=data / "train.jsonl", output_dir=out, max_length=96, batch_size=8,
                  num_epochs=25, learning_rate=1e-2, eval_steps=25, warmup_ratio=0.1,
                  early_stopping_patience=None, progress=False, num_threads=1, seed=3,
                  lora={"dropout": 0.0}, name="tiny-qwen")
    fields.update(overrides)
    return TrainConfig(**fields)


@pytest.fixture(scope="module")
def trained_qwen(tiny_qwen, tmp_path_factory):
    data = tmp_path_factory.mktemp("qwen-data")
    write_jsonl(data / "train.jsonl", synthetic_rows(16, seed=4))
    out = tmp_path_factory.mktemp("trained-qwen")
    before = load_classifier(tiny_qwen).positive_probabilities(
        [r["text"] for r in synthetic_rows(16, seed=4)])
    train(config(tiny_qwen, data, out))
    return out, data, before


def test_training_learns_the_answer_and_the_labels(trained_qwen):
    out, data, before = trained_qwen
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["event"] == "train"]
    assert losses[-1] < losses[0] / 4  # the answer's fixed tokens are learned first
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    after = load_classifier(out).positive_probabilities([r["text"] for r in rows])
    gold = torch.tensor([r["label"] == "POSITIVE" for r in rows], dtype=torch.float)

    def nll(p):
        p = torch.tensor(p).clamp(1e-6, 1 - 1e-6)
        return -(gold * p.log() + (1 - gold) * (1 - p).log()).mean().item()

    assert nll(after) < nll(before) - 0.1  # the label token itself moved towards the truth


def test_saved_folder_describes_itself(trained_qwen, tiny_qwen):
    out, _, _ = trained_qwen
    card = json.loads((out / "polarity.json").read_text())
    assert card["backend"] == "causal_lm" and card["base_model"] == str(tiny_qwen)
    assert set(card["lora"]["target_modules"]) == REFERENCE_MODULES
    assert card["lora"]["r"] == 16 and card["lora"]["alpha"] == 32
    assert len(card["extra"]["label_token_ids"]) == 2
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == REFERENCE_MODULES
    assert (out / "tokenizer.json").is_file()


def test_prompt_tokens_carry_no_loss(tiny_qwen, tmp_path):
    from polarity.train.recipe import build_task

    task = build_task(config(tiny_qwen, tmp_path, tmp_path / "out"))
    rows = synthetic_rows(4, seed=1)
    loss = task.batch_loss(rows)
    # The same loss by hand: full logits, every position, prompt labels -100.
    from polarity.prompt import training_example

    total, count = 0.0, 0
    for r in rows:
        ids, labels = training_example(task.tokenizer, task.pieces, r["text"], r["label"], 96)
        logits = task.model(input_ids=torch.tensor([ids])).logits[0, :-1]
        target = torch.tensor(labels[1:])
        keep = target != -100
        total += torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum")
        count += int(keep.sum())
    assert loss.item() == pytest.approx((total / count).item(), rel=1e-4)


def test_export_merge_gives_the_same_predictions(trained_qwen, tmp_path):
    from polarity.cli import main

    out, _, _ = trained_qwen
    merged = tmp_path / "merged"
    assert main(["export", "--model", str(out), "--output", str(merged), "--merge",
                 "--dtype", "float32"]) == 0
    assert (merged / "config.json").is_file() and not (merged / "adapter").exists()
    texts = [r["text"] for r in synthetic_rows(6, seed=9)]
    # torch on both sides: the merge alone is compared, not int8 against float.
    a = load_classifier(out, runtime="torch").positive_probabilities(texts)
    b = load_classifier(merged, runtime="torch").positive_probabilities(texts)
    assert a == pytest.approx(b, abs=1e-5)


def test_merge_refuses_an_encoder(trained_tiny, tmp_path, capsys):
    from polarity.cli import main

    assert main(["export", "--model", str(trained_tiny), "--output", str(tmp_path / "m"),
                 "--merge"]) == 2
    assert "causal_lm" in capsys.readouterr().err


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_qwen, tmp_path):
    from polarity.train.recipe import build_task

    rows = synthetic_rows(4, seed=2)
    results = []
    for checkpointing in (False, True):
        # both run every row's head itself (checkpointing cannot share it; tested below)
        task = build_task(config(tiny_qwen, tmp_path, tmp_path / "out", shared_head=False,
                                   gradient_checkpointing=checkpointing))
        task.model.train()
        loss = task.batch_loss(rows)
        loss.backward()
        grads = [p.grad.clone() for p in task.model.parameters() if p.requires_grad]
        results.append((loss.item(), grads))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(results[0][1], results[1][1],
                                                                strict=True))


def test_shared_head_gives_the_same_loss_and_gradients(tiny_qwen, tmp_path):
    """The head's keys and values computed once and expanded over the batch (with their
    gradients) equal every row running its own head, on rows of different lengths."""
    from polarity.train.recipe import build_task

    rows = synthetic_rows(6, seed=5)
    assert len({len(r["text"]) for r in rows}) > 1  # padding between head and text is tested
    results = []
    for shared in (False, True):
        task = build_task(config(tiny_qwen, tmp_path, tmp_path / "out", shared_head=shared))
        assert task.shared_head is shared
        torch.manual_seed(0)
        with torch.no_grad():  # LoRA's B starts at zero, which leaves A without a gradient
            for name, param in task.model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.1)
        task.model.train()
        loss = task.batch_loss(rows)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in task.model.named_parameters()
                 if p.requires_grad}
        results.append((loss.item(), grads))
    (plain, plain_grads), (shared, shared_grads) = results
    assert shared == pytest.approx(plain, rel=1e-5)
    assert plain_grads.keys() == shared_grads.keys()
    for name, grad in plain_grads.items():
        assert grad.abs().sum() > 0, name  # every adapter has a gradient to compare
        assert torch.allclose(grad, shared_grads[name], atol=1e-6, rtol=1e-4), name


def test_reasoning_comes_from_the_base_model_and_labels_from_the_adapter(trained_qwen,
                                                                         tiny_qwen):
    out, data, before = trained_qwen
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    texts, labels = [r["text"] for r in rows[:4]], [r["label"] for r in rows[:4]]
    tuned = load_classifier(out, runtime="torch")
    base = load_classifier(tiny_qwen, runtime="torch")
    assert tuned.backend.reasoning_ids(texts, labels, max_new_tokens=6) == \
        base.backend.reasoning_ids(texts, labels, max_new_tokens=6)
    # scoring still uses the adapter, before and after a reason was generated
    after = tuned.positive_probabilities([r["text"] for r in rows])
    assert after != pytest.approx(before, abs=1e-3)
    tuned.predict(texts[:1], include_reasoning=True)
    assert tuned.positive_probabilities([r["text"] for r in rows]) == pytest.approx(after,
                                                                                   abs=1e-5)
