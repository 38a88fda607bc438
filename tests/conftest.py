"""Shared fixtures: a tiny BERT-style encoder built from a config, and small data files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests run the runtime users get (ONNX Runtime static int8 for the encoder, auto); a test
# that compares with training asks for torch itself. ONNX and GGUF exports of the tests'
# models go to a cache of this session's own, not the user's; the user's cache stays
# reachable for the opt-in tests of real weights (POLARITY_USER_CACHE).
os.environ.pop("POLARITY_RUNTIME", None)
os.environ.setdefault("POLARITY_USER_CACHE", os.environ.get(
    "POLARITY_CACHE", str(Path.home() / ".cache" / "polarity")))
os.environ["POLARITY_CACHE"] = tempfile.mkdtemp(prefix="polarity-test-cache-")

from helpers import (  # noqa: E402
    build_tiny_encoder,
    build_tiny_qwen,
    synthetic_rows,
    tiny_train_config,
    write_jsonl,
)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> Path:
    return build_tiny_qwen(tmp_path_factory.mktemp("tiny-qwen"))


@pytest.fixture(scope="session")
def toy_splits(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("toy-data")
    write_jsonl(folder / "train.jsonl", synthetic_rows(256, seed=1))
    write_jsonl(folder / "val.jsonl", synthetic_rows(64, seed=2))
    return folder




@pytest.fixture(scope="session")
def trained_tiny(tiny_encoder, toy_splits, tmp_path_factory) -> Path:
    """A tiny encoder model trained for a few dozen steps on the toy data."""
    from polarity.train.run import train

    out = tmp_path_factory.mktemp("trained-tiny")
    train(tiny_train_config(tiny_encoder, toy_splits, out))
    return out
