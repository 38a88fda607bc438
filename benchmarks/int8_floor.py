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
``--bits 8 4`` adds the same stack with 4-bit weights (ONNX Runtime's ``MatMulNBits``, blocks
of 32 along k, activations quantised to int8 inside: ``accuracy_level`` 4): half the bytes a
call streams, so where batch 1 is bound by memory it is what a 4-bit graph could gain.

    .venv/bin/python benchmarks/int8_floor.py --tokens 30 --batches 1 16 [--bits 8 4]
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


def int8_product(name: str, source: str, k: int, n: int, rng: np.random.Generator):
    """``MatMulInteger`` of a uint8 input and constant int8 weights: (node, weights)."""
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(rng.integers(-127, 127, (k, n), dtype=np.int8), name)
    return helper.make_node("MatMulInteger", [source, name], [f"y{name}"]), [weight]


def int4_product(name: str, source: str, k: int, n: int, rng: np.random.Generator):
    """``MatMulNBits`` of a float input and constant 4-bit weights in blocks of 32 along k,
    the input quantised to int8 inside (``accuracy_level`` 4): (node, weights)."""
    from onnx import helper, numpy_helper
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits

    block = 32
    blocks = -(-k // block)
    packed = np.zeros((n, blocks, block // 2), np.uint8)
    scales = np.zeros((n, blocks), np.float32)
    quantize_matmul_4bits(packed, rng.standard_normal((k, n), dtype=np.float32), scales,
                          np.zeros((n, -(-blocks // 2)), np.uint8), block, n, k, True)
    node = helper.make_node("MatMulNBits", [source, name, f"{name}_scales"], [f"y{name}"],
                            domain="com.microsoft", K=k, N=n, bits=4, block_size=block,
                            accuracy_level=4)
    return node, [numpy_helper.from_array(packed, name),
                  numpy_helper.from_array(scales, f"{name}_scales")]


def stack_session(shapes: Shapes, m: int, stacked: int, threads: int, bits: int = 8):
    """An ONNX Runtime session of ``stacked`` layers' products at ``m`` rows with int8 (or
    4-bit) weights, and its feed."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    product, kind, out = (int8_product, TensorProto.UINT8, TensorProto.INT32) if bits == 8 \
        else (int4_product, TensorProto.FLOAT, TensorProto.FLOAT)
    nodes, weights, outputs = [], [], []
    for layer in range(stacked):
        for j, (k, n) in enumerate(shapes.products):
            node, tensors = product(f"w{layer}_{j}", "a_ffn" if k == shapes.ffn else "a",
                                    k, n, rng)
            nodes.append(node)
            weights += tensors
            outputs.append(helper.make_tensor_value_info(node.output[0], out, [m, n]))
    graph = helper.make_graph(nodes, "int8_stack", [
        helper.make_tensor_value_info("a", kind, [m, shapes.hidden]),
        helper.make_tensor_value_info("a_ffn", kind, [m, shapes.ffn])], outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    if bits == 8:
        feed = {"a": rng.integers(0, 255, (m, shapes.hidden), dtype=np.uint8),
                "a_ffn": rng.integers(0, 255, (m, shapes.ffn), dtype=np.uint8)}
    else:
        feed = {"a": rng.standard_normal((m, shapes.hidden), dtype=np.float32),
                "a_ffn": rng.standard_normal((m, shapes.ffn), dtype=np.float32)}
    return session, feed


def floor(shapes: Shapes, tokens: int, batch: int, threads: int, repeats: int = 5,
          stacked: int = STACKED, bits: int = 8) -> dict:
    """The fastest of ``repeats`` runs of one call of ``batch`` texts of ``tokens`` new tokens
    each through the layers' int8 (or 4-bit weight) products: seconds a text and the product
    rate (ops/s)."""
    stacked = min(stacked, shapes.layers)
    session, feed = stack_session(shapes, tokens * batch, stacked, threads, bits)
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
    parser.add_argument("--bits", type=int, nargs="+", choices=(8, 4), default=[8],
                        help="weights' bits: 8 (MatMulInteger), 4 (MatMulNBits)")
    args = parser.parse_args()
    import os

    from transformers import AutoConfig

    from polarity.backends.base_models import resolve_base
    from polarity.cpu import cpu

    shapes = shapes_of(AutoConfig.from_pretrained(str(resolve_base(args.model, None))))
    print(f"{shapes}: {shapes.ops_per_token() / 1e9:.2f} GOP and "
          f"{shapes.weight_bytes() / 1e9:.2f} GB of int8 weights a token")
    here = cpu()
    print(f"CPU {here['name']}, {here['cores']} cores, {' '.join(here['extensions'])}")
    print("| weights | batch | GOPS | ms a text (products only) |\n|---|---|---|---|")
    for bits in args.bits:
        for batch in args.batches:
            row = floor(shapes, args.tokens, batch, args.threads or os.cpu_count() or 1,
                        bits=bits)
            print(f"| {bits}-bit | {batch} | {row['ops_per_s'] / 1e9:.0f} | "
                  f"{row['s_per_text'] * 1e3:.0f} |", flush=True)


if __name__ == "__main__":
    main()
