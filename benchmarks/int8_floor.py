"""The int8 product rate of this CPU at a causal LM's own shapes, and the floor it implies
for a text: what the accurate tier's runtimes are measured against.

The products are ONNX Runtime's ``MatMulInteger`` (MLAS: VNNI, and AMX where the CPU has it)
with constant int8 weights, so they are packed once as a runtime packs them. Each layer's
four products (q, k, v fused; o; gate and up fused; down) get their own weights, and enough
layers are stacked to be larger than the last-level cache: a text at batch 1 streams every
weight from memory once a call, as a real model does, and that, not the arithmetic, is what
bounds it. A call of ``m`` rows (the tokens of the texts of one call) runs the stack once;
the floor of a text is that time divided by the texts in the call, times layers / stacked.
Attention, norms and the output projection are left out, so the floor is low, never high.

    .venv/bin/python benchmarks/int8_floor.py --tokens 30 --batches 1 16
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

#: Layers stacked per timing: 14 of the 1.5B model's 28 are 655 MB of int8 weights, larger
#: than any last-level cache (480 MiB reported on the CPU of this work).
STACKED = 14


@dataclass(frozen=True)
class Shapes:
    hidden: int
    kv: int  # width of k and of v (kv heads x head dim)
    ffn: int
    layers: int

    @property
    def products(self) -> list[tuple[int, int]]:
        """(k, n) of each layer's products, as runtimes fuse them."""
        h = self.hidden
        return [(h, h + 2 * self.kv), (h, h), (h, 2 * self.ffn), (self.ffn, h)]

    def ops_per_token(self) -> int:
        return sum(2 * k * n for k, n in self.products) * self.layers

    def weight_bytes(self) -> int:
        return sum(k * n for k, n in self.products) * self.layers


def shapes_of(config) -> Shapes:
    """A Hugging Face Qwen2/Llama-style config's product shapes."""
    head = config.hidden_size // config.num_attention_heads
    return Shapes(config.hidden_size, config.num_key_value_heads * head,
                  config.intermediate_size, config.num_hidden_layers)


def stack_session(shapes: Shapes, m: int, stacked: int, threads: int):
    """An ONNX Runtime session of ``stacked`` layers' int8 products at ``m`` rows, and its
    feed."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, outputs = [], [], []
    for layer in range(stacked):
        for j, (k, n) in enumerate(shapes.products):
            name = f"w{layer}_{j}"
            weights.append(numpy_helper.from_array(
                rng.integers(-127, 127, (k, n), dtype=np.int8), name))
            source = "a_ffn" if k == shapes.ffn else "a"
            nodes.append(helper.make_node("MatMulInteger", [source, name], [f"y{name}"]))
            outputs.append(helper.make_tensor_value_info(f"y{name}", TensorProto.INT32,
                                                         [m, n]))
    graph = helper.make_graph(nodes, "int8_stack", [
        helper.make_tensor_value_info("a", TensorProto.UINT8, [m, shapes.hidden]),
        helper.make_tensor_value_info("a_ffn", TensorProto.UINT8, [m, shapes.ffn])],
        outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feed = {"a": rng.integers(0, 255, (m, shapes.hidden), dtype=np.uint8),
            "a_ffn": rng.integers(0, 255, (m, shapes.ffn), dtype=np.uint8)}
    return session, feed


def floor(shapes: Shapes, tokens: int, batch: int, threads: int, repeats: int = 5,
          stacked: int = STACKED) -> dict:
    """The fastest of ``repeats`` runs of one call of ``batch`` texts of ``tokens`` new tokens
    each through the layers' int8 products: seconds a text and the product rate (ops/s)."""
    stacked = min(stacked, shapes.layers)
    session, feed = stack_session(shapes, tokens * batch, stacked, threads)
    session.run(None, feed)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - started)
    call = best * shapes.layers / stacked
    return {"tokens": tokens, "batch": batch, "s_per_text": call / batch,
            "ops_per_s": shapes.ops_per_token() * tokens * batch / call}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct",
                        help="a model folder or pulled name whose config gives the shapes")
    parser.add_argument("--tokens", type=int, default=30, help="new tokens a text")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    import os

    from transformers import AutoConfig

    from polarity.backends.base_models import resolve_base

    shapes = shapes_of(AutoConfig.from_pretrained(str(resolve_base(args.model, None))))
    print(f"{shapes}: {shapes.ops_per_token() / 1e9:.2f} GOP and "
          f"{shapes.weight_bytes() / 1e9:.2f} GB of int8 weights a token")
    for batch in args.batches:
        row = floor(shapes, args.tokens, batch, args.threads or os.cpu_count() or 1)
        print(f"batch {batch}, {args.tokens} tokens a text: {row['ops_per_s'] / 1e9:.0f} GOPS, "
              f"floor {row['s_per_text'] * 1e3:.0f} ms a text")


if __name__ == "__main__":
    main()
