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
(``polarity.backends.ct2.MAX_SPAN``; shipped: 0, one length a call); ``onnx_lm@plain`` is the
onnx runtime's graph without smoothing (``polarity.backends.onnx_lm.SMOOTH``),
``onnx_lm@separate`` with q, k, v and gate, up as separate products (``JOIN``).
``--batch-sizes 16 --alone 0`` on all of a test set compares labels and accuracy only.
Prints one table and the CPU's extensions. ``--runtimes`` with nothing after it prints the
floor alone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

#: Texts timed one at a time for the latency of a lone request.
LATENCY_TEXTS = 32


def polarity_runtime(model: str, spec: str):
    from polarity import load_classifier

    spec, _, span = spec.partition("@")
    runtime, _, dtype = spec.partition(":")
    if span in ("plain", "separate"):
        import polarity.backends.onnx_lm as onnx_lm

        setting = "SMOOTH" if span == "plain" else "JOIN"
        shipped = getattr(onnx_lm, setting)
        setattr(onnx_lm, setting, False)
        try:
            clf = load_classifier(model, runtime=runtime, dtype=dtype or None)
        finally:
            setattr(onnx_lm, setting, shipped)
        what = "not smoothed" if span == "plain" else "products not joined"
        return clf.positive_probabilities, f"{runtime} {clf.info.dtype}, {what}", \
            clf.info.threads
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
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16],
                        help="timed batch sizes; labels are compared at the last")
    parser.add_argument("--alone", type=int, default=LATENCY_TEXTS,
                        help="texts timed one call at a time (0: none)")
    parser.add_argument("--save", type=Path, help="write each runtime's P(POSITIVE) as JSON")
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
        for batch in args.batch_sizes:
            started = time.perf_counter()
            p = np.asarray(score(texts, batch))
            result[f"tps{batch}"] = len(texts) / (time.perf_counter() - started)
            result[f"p{batch}"] = p
        alone = []  # one text a call, one call at a time: a lone request's latency
        for text in texts[:args.alone]:
            started = time.perf_counter()
            score([text], 1)
            alone.append(time.perf_counter() - started)
        result["p50"] = float(np.median(alone)) if alone else float("nan")
        first, last = (result[f"p{b}"] for b in (args.batch_sizes[0], args.batch_sizes[-1]))
        labels = last >= 0.5
        if reference is None:
            reference, reference_p = labels, last
        result["mean_dp"] = float(np.abs(last - reference_p).mean())
        result["changed"] = int(((first >= 0.5) != labels).sum())
        result["agree"] = float((labels == reference).mean())
        result["apart"] = int((labels != reference).sum())
        result["accuracy"] = float((labels == gold).mean())
        result["max_dp"] = float(np.abs(first - last).max())
        print(f"  {name}: " + " / ".join(f"{result[f'tps{b}']:.2f}" for b in args.batch_sizes)
              + f" texts/s at batch {args.batch_sizes}, {result['p50'] * 1e3:.0f} ms a text "
              "alone", flush=True)
        rows.append(result)
    if args.save:
        args.save.write_text(json.dumps({r["runtime"]: r[f"p{args.batch_sizes[-1]}"].tolist()
                                         for r in rows}))
    small, large = args.batch_sizes[0], args.batch_sizes[-1]
    print(f"| runtime | load s | p50 ms, a text alone | texts/s b{small} | texts/s b{large} | "
          f"share of the int8 floor, alone / b16 | labels changed b{small} vs b{large} | "
          f"max |dp| b{small} vs b{large} | agreement with the first (labels apart) | "
          "mean |dp| from the first | accuracy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = (f"{floors[1]['s_per_text'] / r['p50']:.0%} / "
                 f"{floors[16]['s_per_text'] * r.get('tps16', float('nan')):.0%}")
        print(f"| {r['runtime']} ({r['threads']} threads) | {r['load_s']:.0f} | "
              f"{r['p50'] * 1e3:.0f} | {r[f'tps{small}']:.2f} | {r[f'tps{large}']:.2f} | "
              f"{share} | {r['changed']} | {r['max_dp']:.1e} | {r['agree']:.4f} "
              f"({r['apart']}) | {r['mean_dp']:.4f} | {r['accuracy']:.4f} |")


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
