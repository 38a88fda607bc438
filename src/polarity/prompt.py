"""The Qwen2 tier's prompt and answer format: the only module that knows them.

A prompt is the chat template rendered around one text, cut into three token pieces:

- ``head``: everything before the text (system turn, ``<|im_start|>user``, ``Text to
  analyze:``), the same for every text, so its KV cache can be computed once;
- ``body``: `` {text}``, tokenised with special tokens split, so a text that contains
  ``<|im_end|>`` cannot close its own turn; truncated to fit ``max_length``;
- ``tail``: ``<|im_end|>``, the assistant header and the answer prefix ``Sentiment:``.

The label is read from the logits of the token after ``Sentiment:``; the answer the model
is trained on is ``Sentiment: LABEL`` (plus ``Reasoning:`` when a row has one) and the turn's
end token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from polarity.labels import LABELS, NEGATIVE, POSITIVE

SYSTEM_PROMPT = ("You are a sentiment analysis AI. Analyze the following text and classify "
                 "the sentiment as positive or negative.")
USER_PREFIX = "Text to analyze:"
ANSWER_PREFIX = "Sentiment:"
REASONING_PREFIX = "\nReasoning:"
END_OF_TURN = "<|im_end|>"
PROMPT_VERSION = 1
# Used only when a tokenizer has no chat template of its own; it is Qwen2-Instruct's.
QWEN_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_SENTINEL = "\x00TEXT\x00"


@dataclass(frozen=True)
class PromptPieces:
    """Token ids of the parts of a prompt that do not depend on the text."""

    head: list[int]
    tail: list[int]
    """Ends with the answer prefix, so the next token is the label's first token."""
    label_ids: tuple[int, int]
    """First token of `` NEGATIVE`` and `` POSITIVE`` after the answer prefix (LABELS order)."""
    end_of_turn: int
    answer_prefix: list[int]
    """Token ids of ``Sentiment:`` (the end of ``tail``)."""


def messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"{USER_PREFIX} {text}"}]


def render(tokenizer, text: str) -> str:
    """The prompt as a string, up to the assistant header (no answer prefix)."""
    template = getattr(tokenizer, "chat_template", None) or QWEN_TEMPLATE
    return tokenizer.apply_chat_template(messages(text), chat_template=template,
                                         tokenize=False, add_generation_prompt=True)


def _ids(tokenizer, text: str, split_special: bool = False) -> list[int]:
    return tokenizer(text, add_special_tokens=False, split_special_tokens=split_special
                     )["input_ids"]


def prompt_pieces(tokenizer) -> PromptPieces:
    """Cut the rendered template around the text; find the label tokens."""
    rendered = render(tokenizer, _SENTINEL)
    head, tail = rendered.split(" " + _SENTINEL)
    prefix_ids = _ids(tokenizer, ANSWER_PREFIX)
    label_ids = []
    for label in LABELS:
        full = _ids(tokenizer, f"{ANSWER_PREFIX} {label}")
        if full[:len(prefix_ids)] != prefix_ids:
            raise ValueError(f"the tokenizer merges {ANSWER_PREFIX!r} with the label")
        label_ids.append(full[len(prefix_ids)])
    if label_ids[0] == label_ids[1]:
        raise ValueError("NEGATIVE and POSITIVE start with the same token; cannot score them")
    eot = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if eot is None or eot == tokenizer.unk_token_id:
        eot = tokenizer.eos_token_id
    return PromptPieces(_ids(tokenizer, head), _ids(tokenizer, tail + ANSWER_PREFIX),
                        (label_ids[0], label_ids[1]), eot, prefix_ids)


def body_ids(tokenizer, pieces: PromptPieces, text: str, max_length: int,
             reserve: int = 0) -> list[int]:
    """The text's tokens, cut so that head + body + tail + ``reserve`` fit ``max_length``."""
    budget = max_length - len(pieces.head) - len(pieces.tail) - reserve
    if budget < 1:
        raise ValueError(f"max_length {max_length} leaves no room for the text after the "
                         f"{len(pieces.head) + len(pieces.tail)}-token template")
    return _ids(tokenizer, f" {text}", split_special=True)[:budget]


def tokens_read(tokenizer, texts: Sequence[str], max_length: int) -> list[int]:
    """Tokens of each text as the model reads it (cut at ``max_length``): a text's cost."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [min(len(i), max_length) for i in ids]


def scoring_ids(tokenizer, pieces: PromptPieces, text: str, max_length: int) -> list[int]:
    """Prompt + answer prefix: the model's next token decides the label."""
    return pieces.head + body_ids(tokenizer, pieces, text, max_length) + pieces.tail


def scoring_ids_batch(tokenizer, pieces: PromptPieces, texts: list[str], max_length: int
                      ) -> list[list[int]]:
    """:func:`scoring_ids` of many texts with one tokenizer call (the fast tokenizer then
    works in parallel, in Rust): per-text calls bound GPU scoring at 1,100-2,000 texts/s."""
    budget = max_length - len(pieces.head) - len(pieces.tail)
    if budget < 1:
        raise ValueError(f"max_length {max_length} leaves no room for the text after the "
                         f"{len(pieces.head) + len(pieces.tail)}-token template")
    bodies = tokenizer([f" {t}" for t in texts], add_special_tokens=False,
                       split_special_tokens=True)["input_ids"]
    return [pieces.head + body[:budget] + pieces.tail for body in bodies]


def generation_ids(tokenizer, pieces: PromptPieces, text: str, max_length: int,
                   max_new_tokens: int) -> list[int]:
    """The prompt up to the assistant header, for generating the whole answer freely."""
    body = body_ids(tokenizer, pieces, text, max_length, max_new_tokens)
    return pieces.head + body + pieces.tail[:len(pieces.tail) - len(pieces.answer_prefix)]


def answer_text(label: str, reasoning: str | None = None) -> str:
    """What follows the answer prefix in a training target, end of turn excluded."""
    text = f" {label}"
    if reasoning:
        text += f"{REASONING_PREFIX} {reasoning.strip()}"
    return text


def training_example(tokenizer, pieces: PromptPieces, text: str, label: str, max_length: int,
                     reasoning: str | None = None) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` with the prompt masked (-100): loss only on the answer."""
    answer = _ids(tokenizer, answer_text(label, reasoning)) + [pieces.end_of_turn]
    answer = answer[:max(1, max_length // 4)]  # a long reasoning never pushes out the text
    prefix = pieces.answer_prefix
    prompt = pieces.head + body_ids(tokenizer, pieces, text, max_length, len(answer))
    prompt += pieces.tail[:len(pieces.tail) - len(prefix)]
    ids = prompt + prefix + answer
    return ids, [-100] * len(prompt) + prefix + answer


def full_answer(label: str, confidence: float, reasoning: str | None) -> str:
    """The reference design's three-line answer."""
    lines = [f"Sentiment: {label}", f"Confidence: {confidence:.2f}"]
    if reasoning:
        lines.append(f"Reasoning: {reasoning}")
    return "\n".join(lines)


_LABEL_RE = re.compile(r"sentiment\s*:\s*\**\s*(positive|negative)", re.IGNORECASE)
_WORD_RE = re.compile(r"\b(positive|negative)\b", re.IGNORECASE)
_REASON_RE = re.compile(r"reasoning\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)


def parse_answer(text: str) -> tuple[str | None, str | None]:
    """Label and reasoning from a freely generated answer (None where absent)."""
    label_match = _LABEL_RE.search(text)
    label = None
    if label_match:
        label = POSITIVE if label_match.group(1).lower() == "positive" else NEGATIVE
    else:  # an instruct model answering in prose: accept it when it names one label only
        named = {w.lower() for w in _WORD_RE.findall(text)}
        if len(named) == 1:
            label = POSITIVE if named == {"positive"} else NEGATIVE
    reason_match = _REASON_RE.search(text)
    reasoning = reason_match.group(1).strip() if reason_match else None
    return label, reasoning or None
