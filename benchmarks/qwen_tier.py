"""The Qwen2 tier on real weights: accuracy and time per text, label scoring against
generating the full answer, side by side in one run.

    .venv/bin/python benchmarks/qwen_tier.py --model qwen2.5-coder-1.5b-instruct \
        --test-file ../shared/data/sst2/dev.tsv --generate 8 --json reports/qwen_zero_shot.json

--model takes anything ``load_classifier`` takes (a pulled name, a folder, a trained adapter).
For the first --generate texts it also times (a) the full reference answer as polarity makes it
(label scored, then ``Reasoning:`` generated greedily, at most --max-new-tokens) and (b) free
generation from the bare prompt, parsed with ``prompt.parse_answer``; scoring is one forward
pass a text.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--test-file", default="../shared/data/sst2/dev.tsv")
    parser.add_argument("--limit", type=int, help="first N rows only")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--generate", type=int, default=8,
                        help="texts to also answer by free generation (0 skips)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import torch

    from polarity.backends.causal_lm import decode, generate_after
    from polarity.evaluate.data import load_test_set
    from polarity.predictor import load_classifier
    from polarity.prompt import generation_ids, parse_answer

    test = load_test_set(args.test_file)
    texts, labels = test.texts[:args.limit], test.labels[:args.limit]
    started = time.perf_counter()
    model = load_classifier(args.model)
    load_s = time.perf_counter() - started
    model.predict(texts[:2])  # warm-up

    started = time.perf_counter()
    predictions = model.predict(texts, batch_size=args.batch_size)
    score_s = (time.perf_counter() - started) / len(texts)
    accuracy = float(np.mean([p.label == y for p, y in zip(predictions, labels, strict=True)]))
    result = {"model": args.model, "test_file": args.test_file, "rows": len(texts),
              "accuracy": round(accuracy, 4), "dtype": model.info.dtype,
              "threads": torch.get_num_threads(), "load_s": round(load_s, 1),
              "scoring_s_per_text": round(score_s, 3), "batch_size": args.batch_size}

    if args.generate:
        tok, pieces = model.backend.tokenizer, model.backend.pieces
        head_and_body = [generation_ids(tok, pieces, t, model.card.max_length,
                                        args.max_new_tokens) for t in texts[:args.generate]]
        started = time.perf_counter()
        answers = []
        for start in range(0, len(head_and_body), args.batch_size):
            answers += [decode(tok, ids) for ids in generate_after(
                model.backend.model, tok, head_and_body[start:start + args.batch_size],
                args.max_new_tokens, pieces.end_of_turn)]
        gen_s = (time.perf_counter() - started) / len(answers)
        parsed = [parse_answer(a)[0] for a in answers]
        started = time.perf_counter()
        explained = model.predict(texts[:args.generate], batch_size=args.batch_size,
                                  include_reasoning=True)
        reason_s = (time.perf_counter() - started) / len(explained)
        result.update({
            "full_answer_with_reasoning_s_per_text": round(reason_s, 3),
            "full_answer_over_scoring": round(reason_s / score_s, 1),
            "example_reasoning": explained[0].reasoning,
            "generation_s_per_text": round(gen_s, 3),
            "generation_over_scoring": round(gen_s / score_s, 1),
            "generated_texts": len(answers),
            "generation_unparsable": sum(p is None for p in parsed),
            "generation_agrees_with_scoring": sum(
                p == s.label for p, s in zip(parsed, predictions, strict=False)),
            "example_answer": answers[0] if answers else None,
        })

    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
