"""Test helpers: toy data and a tiny BERT-style encoder built from a config."""

from __future__ import annotations

import json
import string
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[1]


def load_script(name: str):
    """``scripts/NAME.py`` as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

POSITIVE_WORDS = ["great", "love", "excellent", "wonderful", "superb", "delightful", "happy"]
NEGATIVE_WORDS = ["awful", "hate", "terrible", "boring", "broken", "worst", "sad"]
FILLER = ["the", "movie", "phone", "was", "really", "this", "product", "it", "is", "so"]


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    """Separable toy data: one sentiment word among filler words."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = i % 2 == 0
        word = rng.choice(POSITIVE_WORDS if positive else NEGATIVE_WORDS)
        words = rng.sample(FILLER, 2) + [word]
        rng.shuffle(words)
        rows.append({"text": " ".join(words) + f" {i}", "label": "POSITIVE" if positive
                     else "NEGATIVE"})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def build_tiny_encoder(folder: Path, dropout: float = 0.1) -> Path:
    """A 2-layer, 32-wide BERT with a WordPiece vocabulary trained on the toy words."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    # An explicit, sorted vocabulary: WordPieceTrainer orders tokens of equal frequency
    # differently from run to run, which made the tiny model (and its accuracy) vary.
    words = sorted(set(POSITIVE_WORDS + NEGATIVE_WORDS + FILLER))
    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars),
             *words]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")),
                                                ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(folder)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128, initializer_range=0.1,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    import torch

    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tiny_qwen(folder: Path) -> Path:
    """A 2-layer, 32-wide Qwen2 with a byte-level BPE trained offline and Qwen's chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from polarity.prompt import QWEN_TEMPLATE, SYSTEM_PROMPT

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=QWEN_SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [r["text"] for r in synthetic_rows(200)] + [
        SYSTEM_PROMPT, "system user assistant Text to analyze:", "Sentiment: POSITIVE",
        "Sentiment: NEGATIVE", "Reasoning: the words say so."]
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>",
                                   additional_special_tokens=QWEN_SPECIALS[1:])
    fast.chat_template = QWEN_TEMPLATE
    fast.save_pretrained(folder)
    config = Qwen2Config(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         initializer_range=0.3)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def tiny_train_config(tiny_encoder: Path, data: Path, out: Path, **overrides):
    from polarity.train.config import TrainConfig

    fields = dict(base_model=str(tiny_encoder), train_file=data / "train.jsonl",
                  val_file=data / "val.jsonl", output_dir=out, max_length=32, batch_size=16,
                  num_epochs=6, learning_rate=1e-2, eval_steps=8, warmup_ratio=0.1,
                  early_stopping_patience=None, progress=False, num_threads=1,
                  name="tiny", seed=8)
    fields.update(overrides)
    return TrainConfig(**fields)


def tune_tiny_qwen(base: Path, root: Path, name: str) -> Path:
    """A few LoRA steps of the tiny Qwen2 (``base``: its folder or a GGUF of it) on 16
    synthetic rows: a tuned causal LM folder for the runtimes' tests."""
    from polarity.train.config import TrainConfig
    from polarity.train.run import train

    write_jsonl(root / "train.jsonl", synthetic_rows(16, seed=4))
    out = root / "model"
    train(TrainConfig(backend="causal_lm", base_model=str(base),
                      train_file=root / "train.jsonl", val_file=root / "train.jsonl",
                      output_dir=out, max_length=96, batch_size=8, max_steps=6,
                      learning_rate=1e-2, eval_steps=6, warmup_ratio=0.0,
                      early_stopping_patience=None, progress=False, num_threads=1, seed=3,
                      lora={"dropout": 0.0}, name=name))
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_tiny_gguf(qwen_folder: Path, path: Path) -> Path:
    """The tiny Qwen2 as a float32 GGUF file with its BPE tokenizer and chat template, as
    llama.cpp's converter lays one out: what `polarity models pull` converts, in small."""
    import json as _json

    import numpy as np
    import torch
    from gguf import MODEL_ARCH, GGUFWriter, get_tensor_name_map
    from safetensors.torch import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(qwen_folder)
    tok = _json.loads((qwen_folder / "tokenizer.json").read_text())
    tok_config = _json.loads((qwen_folder / "tokenizer_config.json").read_text())
    vocab = dict(tok["model"]["vocab"])
    for added in tok.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    specials = {a["content"] for a in tok.get("added_tokens", []) if a.get("special")}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]

    writer = GGUFWriter(str(path), "qwen2")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(config.rope_theta if hasattr(config, "rope_theta")
                              else config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in specials else 1 for t in tokens])
    writer.add_token_merges(merges)
    writer.add_eos_token_id(config.eos_token_id)
    writer.add_bos_token_id(config.pad_token_id)
    writer.add_pad_token_id(config.pad_token_id)
    writer.add_chat_template(tok_config.get("chat_template") or
                             (qwen_folder / "chat_template.jinja").read_text())
    names = get_tensor_name_map(MODEL_ARCH.QWEN2, config.num_hidden_layers)
    weights = load_file(str(qwen_folder / "model.safetensors"))
    for name, tensor in weights.items():
        if name == "lm_head.weight":
            continue  # tied to the embeddings
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        writer.add_tensor(gguf_name, tensor.to(torch.float32).numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
