"""The accurate tier's CPU runtimes side by side, on the same texts, in one run: texts/s at
batch 1 and 16, label agreement with the first runtime, labels that change between batch
sizes, accuracy, and each runtime's share of the int8 floor of these cores
(:mod:`int8_floor`: the layers' int8 products at the model's shapes, timed in the same run).

    .venv/bin/python benchmarks/accurate_runtimes.py --model accurate \
        --test-file ../shared/data/sst2/dev.tsv --limit 96 \
        --runtimes torch:float32 torch:bfloat16 llama_cpp ctranslate2

"texts/s b1" is ``score(texts, batch_size=1)``: one text a call, as many calls at once as
the runtime runs (the onnx runtime: two); "a text alone" is one call of one text at a time,
the latency of a lone request (p50 of the first 32 texts).

Each ``RUNTIME[:DTYPE]`` is one of polarity's runtimes (``load_classifier(model,
runtime=..., dtype=...)``, :mod:`polarity.registry`), with its default threads (all cores);
``ctranslate2@SPAN`` lets a call hold texts whose token lengths differ by up to SPAN
(``polarity.backends.ct2.MAX_SPAN``; shipped: 0, one length a call).
Prints one table and the CPU's extensions. ``--runtimes`` with nothing after it prints the
floor alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

#: Texts timed one at a time for the latency of a lone request.
LATENCY_TEXTS = 32


def polarity_runtime(model: str, spec: str):
    from polarity import load_classifier

    spec, _, span = spec.partition("@")
    runtime, _, dtype = spec.partition(":")
    clf = load_classifier(model, runtime=runtime, dtype=dtype or None)
    name = f"{runtime} {clf.info.dtype}"
    if not span:
        return clf.positive_probabilities, name, clf.info.threads
    import polarity.backends.ct2 as ct2

    def score(texts, batch_size=16):  # CTranslate2 with calls of lengths SPAN apart
        shipped, ct2.MAX_SPAN = ct2.MAX_SPAN, int(span)
        try:
            return clf.positive_probabilities(texts, batch_size)
        finally:
            ct2.MAX_SPAN = shipped

    return score, f"{name}, lengths {span} apart a call", clf.info.threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="accurate")
    parser.add_argument("--test-file", default="../shared/data/sst2/dev.tsv")
    parser.add_argument("--limit", type=int, default=96)
    parser.add_argument("--runtimes", nargs="*",
                        default=["torch:float32", "torch:bfloat16", "llama_cpp",
                                 "ctranslate2"])
    args = parser.parse_args()

    from polarity.evaluate.data import load_test_set
    from polarity.evaluate.setup import cpu

    test = load_test_set(args.test_file)
    texts, gold = test.texts[:args.limit], np.asarray(
        [g == "POSITIVE" for g in test.labels[:args.limit]])
    print(f"CPU: {cpu()}; {len(texts)} texts of {args.test_file}")
    floors = int8_floors(args.model, texts)
    rows, reference = [], None
    for spec in args.runtimes:
        started = time.perf_counter()
        score, name, threads = polarity_runtime(args.model, spec)
        load_s = time.perf_counter() - started
        score(texts[:2])  # warm-up
        result = {"runtime": name, "load_s": load_s, "threads": threads}
        for batch in (1, 16):
            started = time.perf_counter()
            p = np.asarray(score(texts, batch))
            result[f"tps{batch}"] = len(texts) / (time.perf_counter() - started)
            result[f"p{batch}"] = p
        alone = []  # one text a call, one call at a time: a lone request's latency
        for text in texts[:LATENCY_TEXTS]:
            started = time.perf_counter()
            score([text], 1)
            alone.append(time.perf_counter() - started)
        result["p50"] = float(np.median(alone))
        if reference is None:
            reference = result["p16"] >= 0.5
        result["changed"] = int(((result["p1"] >= 0.5) != (result["p16"] >= 0.5)).sum())
        result["agree"] = float(((result["p16"] >= 0.5) == reference).mean())
        result["accuracy"] = float(((result["p16"] >= 0.5) == gold).mean())
        result["max_dp"] = float(np.abs(result["p1"] - result["p16"]).max())
        rows.append(result)
        print(f"  {name}: {result['tps1']:.2f} / {result['tps16']:.2f} texts/s, "
              f"{result['p50'] * 1e3:.0f} ms a text alone", flush=True)
    print("| runtime | load s | p50 ms, a text alone | texts/s b1 | texts/s b16 | share of the "
          "int8 floor, alone / b16 | labels changed b1 vs b16 | max |dp| b1 vs b16 | "
          "agreement with the first | accuracy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = (f"{floors[1]['s_per_text'] / r['p50']:.0%} / "
                 f"{floors[16]['s_per_text'] * r['tps16']:.0%}")
        print(f"| {r['runtime']} ({r['threads']} threads) | {r['load_s']:.0f} | "
              f"{r['p50'] * 1e3:.0f} | {r['tps1']:.2f} | {r['tps16']:.2f} | {share} | "
              f"{r['changed']} | {r['max_dp']:.1e} | {r['agree']:.4f} | {r['accuracy']:.4f} |")


def int8_floors(model: str, texts: list[str]) -> dict[int, dict]:
    """The int8 floor a text at batch 1 and 16 (:func:`int8_floor.floor`) at the texts' mean
    count of new tokens (the text and the prompt's tail: the head is cached), printed."""
    import os

    from int8_floor import floor, shapes_of
    from transformers import AutoConfig

    from polarity.backends.base_models import resolve_base
    from polarity.backends.causal_lm import lm_tokenizer_for
    from polarity.modelcard import read_card
    from polarity.predictor import resolve_model
    from polarity.prompt import prompt_pieces, scoring_ids_batch

    folder = resolve_model(model)
    card = read_card(folder)
    tokenizer = lm_tokenizer_for(folder, card)
    pieces = prompt_pieces(tokenizer)
    rows = scoring_ids_batch(tokenizer, pieces, list(texts), card.max_length)
    tokens = round(float(np.mean([len(r) - len(pieces.head) for r in rows])))
    shapes = shapes_of(AutoConfig.from_pretrained(str(resolve_base(card.base_model, folder))))
    floors = {b: floor(shapes, tokens, b, os.cpu_count() or 1) for b in (1, 16)}
    for b, f in floors.items():
        print(f"int8 floor, batch {b} of {tokens} new tokens a text: "
              f"{f['ops_per_s'] / 1e9:.0f} GOPS, {f['s_per_text'] * 1e3:.0f} ms a text "
              f"({1 / f['s_per_text']:.2f} texts/s)", flush=True)
    return floors


if __name__ == "__main__":
    main()
