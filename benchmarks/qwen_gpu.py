"""Label-scoring throughput of a Qwen2-1.5B-shaped model on a GPU (one short script, < 8 min).

Builds a randomly initialised model with Qwen2-1.5B-Instruct's configuration (hidden 1536,
28 layers, 12 heads, 2 KV heads, intermediate 8960, vocabulary 151,936, tied embeddings) in
bf16 on the GPU. Random weights are enough: the cost of label scoring does not depend on them.
Each request is a 64-token text inside the prompt's fixed head (33 tokens, computed once as a
KV cache, as ``backends/causal_lm.py`` does) and tail (8 tokens); the answer is the softmax
over two label-token logits of the last position.

    python benchmarks/qwen_gpu.py [--seconds 20] [--json reports/perf/qwen_gpu.json]

Prints requests/second and latency percentiles at batch 1, 16 and 64.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

HEAD, TEXT, TAIL = 33, 64, 8
LABEL_IDS = (84065, 26494)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per batch size")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--smoke", action="store_true",
                        help="a 2-layer model on the CPU, to check the script itself")
    args = parser.parse_args()
    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script measures the GPU path (--smoke: CPU)")
    from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM

    from polarity.backends.causal_lm import cache_argument

    shape = (dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=256) if args.smoke else
             dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12,
                  intermediate_size=8960))
    config = Qwen2Config(num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                         max_position_embeddings=32768, **shape)
    torch.manual_seed(0)
    dtype = torch.float32 if args.smoke else torch.bfloat16
    model = Qwen2ForCausalLM(config).to(device, dtype).eval()
    cache_arg = cache_argument(model)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    head = torch.randint(0, 150000, (1, HEAD), device=device)
    with torch.inference_mode():
        prefix = DynamicCache()
        model(input_ids=head, use_cache=True, logits_to_keep=1, **{cache_arg: prefix})
    label_ids = torch.tensor(LABEL_IDS, device=device)

    @torch.inference_mode()
    def score(batch: int) -> torch.Tensor:
        ids = torch.randint(0, 150000, (batch, TEXT + TAIL), device=device)
        mask = torch.ones((batch, HEAD + TEXT + TAIL), dtype=torch.long, device=device)
        position = torch.arange(HEAD, HEAD + TEXT + TAIL, device=device).expand(batch, -1)
        cache = copy.deepcopy(prefix)
        cache.batch_repeat_interleave(batch)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=position,
                       use_cache=True, logits_to_keep=1, **{cache_arg: cache}).logits
        return torch.softmax(logits[:, -1, label_ids].float(), dim=-1)

    rows = []
    for batch in (1, 16, 64):
        for _ in range(3):
            score(batch)
        sync()
        latencies, started = [], time.perf_counter()
        while time.perf_counter() - started < args.seconds:
            t0 = time.perf_counter()
            score(batch)
            sync()
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        lat = np.asarray(latencies) * 1000
        rows.append({"batch": batch, "requests_per_s": batch * len(latencies) / elapsed,
                     "p50_ms": float(np.percentile(lat, 50)),
                     "p95_ms": float(np.percentile(lat, 95)),
                     "p99_ms": float(np.percentile(lat, 99))})
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU smoke run (tiny, fp32)"
    print(f"\n{name}, bf16, Qwen2-1.5B shape (random weights), {TEXT}-token texts\n")
    print("| batch | requests/s | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['requests_per_s']:.0f} | {r['p50_ms']:.1f} | "
              f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
