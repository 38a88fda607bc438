"""The adapter merged tensor by tensor from the safetensors files gives the model peft's own
merge gives, in any number of shards, and an adapter it cannot merge exactly is refused."""

import json
import shutil

import pytest
import torch
from helpers import tune_tiny_qwen

from polarity.backends import merge
from polarity.backends.merge import UnsupportedAdapter, merge_adapter


@pytest.fixture(scope="module")
def tuned(tiny_qwen, tmp_path_factory):
    return tune_tiny_qwen(tiny_qwen, tmp_path_factory.mktemp("merge"), "tiny-merge")


def peft_merged(tiny_qwen, tuned):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    return PeftModel.from_pretrained(base, str(tuned / "adapter")).merge_and_unload()


def test_the_streamed_merge_is_peft_merge_in_float16_in_any_number_of_shards(
        tiny_qwen, tuned, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(merge, "SHARD_BYTES", 64 * 1024)  # several shards of the tiny model
    out = merge_adapter(tiny_qwen, tuned / "adapter", tmp_path / "merged")
    assert len(list(out.glob("model-*.safetensors"))) > 1
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "float16"
    ours = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float16).state_dict()
    theirs = peft_merged(tiny_qwen, tuned).state_dict()
    assert ours.keys() == theirs.keys()
    for key, tensor in theirs.items():
        assert torch.equal(ours[key], tensor.to(torch.float16)), key
    base = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float16).state_dict()
    moved = [key for key in ours if not torch.equal(ours[key], base[key])]
    assert moved and all("proj" in key for key in moved)  # the adapter's projections only


def test_an_adapter_it_cannot_merge_exactly_is_refused_with_the_way_out(tiny_qwen, tuned,
                                                                         tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(tuned / "adapter", adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(UnsupportedAdapter, match="use_dora.*--runtime torch"):
        merge_adapter(tiny_qwen, adapter, tmp_path / "out")
