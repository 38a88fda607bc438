"""Seconds per training row of the Qwen2 tier's LoRA step (forward, backward, AdamW) on real
weights, side by side in one run: each row running its own prompt head, or the head shared
across the batch; float32 or bfloat16 base weights.

    .venv/bin/python benchmarks/qwen_train_step.py --model qwen2.5-coder-1.5b-instruct \
        --rows ../shared/data/sst2/dev.tsv --batch-size 8 --steps 3

Rows are the first ``--batch-size * (steps + 1)`` texts of ``--rows`` (SST-2 dev sentences:
about 31 Qwen tokens each after the 33-token head); one step warms up and is not timed.
Prints one table (and the CPU's instruction set extensions, since bf16 and int8 speeds
depend on them).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--rows", default="../shared/data/sst2/dev.tsv")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--shared", nargs="+", default=["no", "yes"])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    from polarity.evaluate.data import load_test_set
    from polarity.evaluate.setup import cpu
    from polarity.train.config import TrainConfig
    from polarity.train.recipe import build_task, make_optimizer

    if args.threads:
        torch.set_num_threads(args.threads)
    test = load_test_set(args.rows)
    n = args.batch_size * (args.steps + 1)
    rows = [{"text": t, "label": y} for t, y in zip(test.texts[:n], test.labels[:n],
                                                      strict=True)]
    print(f"CPU: {cpu()}; threads {torch.get_num_threads()}; "
          f"{args.steps} timed steps of batch {args.batch_size}")
    print("| base dtype | shared head | s a step | s a row | tokens a row run |")
    print("|---|---|---|---|---|")
    for dtype in args.dtype:
        task = None
        for shared in args.shared:
            config = TrainConfig(backend="causal_lm", base_model=args.model, dtype=dtype,
                                 shared_head=shared == "yes", batch_size=args.batch_size,
                                 progress=False, output_dir="/tmp/unused")
            if task is None:
                task = build_task(config)
            task.config, task.shared_head = config, shared == "yes"
            optimizer = make_optimizer(task.model, config)
            task.model.train()
            times = []
            for i in range(0, len(rows), args.batch_size):
                batch = rows[i:i + args.batch_size]
                started = time.perf_counter()
                task.batch_loss(batch).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if i:
                    times.append(time.perf_counter() - started)
            step = sum(times) / len(times)
            head = len(task.pieces.head)
            own = sum(len(task.tokenizer(" " + r["text"])["input_ids"]) for r in rows) / len(rows)
            tokens = own + len(task.pieces.tail) + 3 + (0 if shared == "yes" else head)
            print(f"| {dtype} | {shared} | {step:.2f} | {step / args.batch_size:.2f} | "
                  f"{tokens:.0f} |", flush=True)
        del task


if __name__ == "__main__":
    main()
