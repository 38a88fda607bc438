"""The service beside what these cores can do and beside a peer server, in one run.

Rows, all on this machine and loaded by the same client with the same unique tweet-length
texts, one text a request: wrk when it is installed (``apt-get install wrk``; wrk_load.py),
else serve_load.py's keep-alive asyncio client (``--client`` chooses):

* ``roofline``: int8 (ONNX Runtime MatMulInteger) and fp32 (PyTorch) matrix products at the
  encoder's own shapes, and what they allow for the model's work per text (its linear layers,
  2 x (4 h^2 + 2 h f) operations a token and layer, and the attention products): all in int8,
  and as the shipped graph runs them (its FFN down-projections and attention stay float);
* ``engine``: the Predictor itself, batch 32, no HTTP;
* ``polarity serve``: /api/v1/analyze at concurrency 1, 16, 64;
* ``infinity-emb``: infinity-emb 0.0.78 with its torch engine on the CPU, serving the same
  encoder weights as a BertForSequenceClassification (its head reads [CLS] through a pooler,
  ours the mean of the tokens, so its answers are not ours: it is here for its speed), in its
  own virtual environment under .bench/ that this script makes on first use;
* ``naive``: a plain FastAPI route calling the transformers model in fp32 once a request.

Every req/s is also given as a share of the int8 roofline and as a ratio to the peer.

    .venv/bin/python benchmarks/peers.py            # the whole table (about 6 minutes)
    .venv/bin/python benchmarks/peers.py --quick    # fewer requests
    .venv/bin/python benchmarks/peers.py --skip-peer --json reports/peers.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import wrk_load
from serve_load import KEY, engine_rows, free_port, load, start, texts

ROOT = Path(__file__).resolve().parents[1]
PEER = ("infinity-emb[server,torch]==0.0.78", "torch==2.13.0")


def matmul_rate(m: int, k: int, n: int, dtype: str, seconds: float = 2.0) -> float:
    """Operations per second (2 m k n a product) of one [m,k] x [k,n] product."""
    if dtype == "fp32":
        import torch

        a, b = torch.randn(m, k), torch.randn(k, n)
        run = lambda: torch.mm(a, b)  # noqa: E731
    else:
        run = _int8_matmul(m, k, n)
    run()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run()
        count += 1
    return 2 * m * k * n * count / (time.perf_counter() - started)


def _int8_matmul(m: int, k: int, n: int):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "mm",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [k, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx.checker.check_model(model)
    rng = np.random.default_rng(0)
    feed = {"a": rng.integers(0, 255, (m, k), dtype=np.uint8),
            "b": rng.integers(-127, 127, (k, n), dtype=np.int8)}
    return lambda: session.run(None, feed)


def roofline(items: list[str]) -> tuple[list[dict], dict]:
    """The matrix-product rates at the model's shapes and the texts/s they allow: all in
    int8 (the issue's ceiling), and as the shipped graph runs them (the FFN down-projections
    and the attention products stay float: :mod:`polarity.quantize`)."""
    from transformers import AutoConfig, AutoTokenizer

    from polarity.backends.base_models import resolve_base
    from polarity.modelcard import read_card
    from polarity.predictor import resolve_model

    folder = resolve_model("default")
    base = resolve_base(read_card(folder).base_model, folder)
    config, tokenizer = AutoConfig.from_pretrained(str(base)), AutoTokenizer.from_pretrained(
        str(base))
    tokens = float(np.mean([len(t) for t in tokenizer(items[:500])["input_ids"]]))
    h, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    int8_ops = 2 * (4 * h * h + h * f) * layers * tokens  # q, k, v, o and the up-projection
    float_ops = (2 * h * f + 4 * tokens * h) * layers * tokens  # down-projection, attention
    m = 32 * round(tokens)  # a batch of 32 texts
    rates = {(kind, shape): matmul_rate(*shape, kind) for kind in ("int8", "fp32")
             for shape in ((m, h, f), (m, f, h), (2048, 2048, 2048))}
    int8 = min(rates[("int8", (m, h, f))], rates[("int8", (m, f, h))])
    fp32 = min(rates[("fp32", (m, h, f))], rates[("fp32", (m, f, h))])
    rows = [{"what": f"{kind} matrix products {a}x{b}x{c}", "value": f"{r / 1e9:.0f} GOPS"}
            for (kind, (a, b, c)), r in rates.items()]
    rows.append({"what": "the model's work per text", "value":
                 f"{(int8_ops + float_ops) / 1e9:.3f} GOP ({tokens:.1f} tokens, {layers} layers "
                 f"of h={h}, f={f}; {float_ops / (int8_ops + float_ops):.0%} of it kept float "
                 "by the shipped graph)"})
    all_int8 = int8 / (int8_ops + float_ops)
    as_shipped = 1 / (int8_ops / int8 + float_ops / fp32)
    rows.append({"what": "int8 roofline (every product in int8)",
                 "value": f"{all_int8:.0f} texts/s"})
    rows.append({"what": "roofline of the shipped graph (its float products at fp32 speed)",
                 "value": f"{as_shipped:.0f} texts/s"})
    return rows, {"int8_texts_s": all_int8, "graph_texts_s": as_shipped, "tokens": tokens}


def peer_python() -> Path:
    """infinity-emb's own virtual environment (made on first use, pinned)."""
    venv = ROOT / ".bench" / "infinity"
    python = venv / "bin" / "python"
    if not (venv / ".installed").is_file():
        print("installing infinity-emb into .bench/infinity (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER], check=True)
        (venv / ".installed").touch()
    return python


def peer_model() -> Path:
    """The default model's encoder (adapter merged) and head as a sequence classifier."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from polarity.backends.base_models import resolve_base
    from polarity.backends.encoder import load_encoder_model, load_tokenizer
    from polarity.modelcard import read_card
    from polarity.predictor import resolve_model

    out = ROOT / ".bench" / "peer-model"
    folder = resolve_model("default")
    card = read_card(folder)
    model = load_encoder_model(folder, card)
    config = BertConfig.from_dict({**model.encoder.config.to_dict(), "num_labels": 2,
                                   "id2label": dict(enumerate(card.labels)),
                                   "label2id": {k: i for i, k in enumerate(card.labels)},
                                   "architectures": ["BertForSequenceClassification"]})
    torch.manual_seed(0)
    peer = BertForSequenceClassification(config)
    peer.bert.load_state_dict(model.encoder.state_dict(), strict=False)  # all but the pooler
    peer.classifier.load_state_dict(model.head.state_dict())
    peer.save_pretrained(out)
    load_tokenizer(resolve_base(card.base_model, folder)).save_pretrained(out)
    return out


def server_rows(label: str, cmd: list[str], port: int, env: dict, path: str,
                bodies: list[dict], seconds: float, measure: Callable[..., dict],
                health: str = "/api/v1/health") -> list[dict]:
    """Start a server, load it at concurrency 1, 16 and 64, stop it. Each request's text is
    unique within a measurement (the warm-up sends others)."""
    encoded = [json.dumps(b).encode() for b in bodies]
    warm, encoded = encoded[-200:], encoded[:-200]
    server = start(cmd, port, env, health=health)
    try:
        asyncio.run(load(port, path, warm, 16, 10))
        return [{"what": label, "c": c, **measure(port, path, encoded, c, seconds)}
                for c in (1, 16, 64)]
    finally:
        server.terminate()
        server.wait(timeout=60)


def loader(client: str, requests: int) -> Callable[..., dict]:
    """``measure(port, path, bodies, concurrency, seconds)``: wrk for ``seconds``, or the
    asyncio client sending the first ``requests`` bodies (or stopping at ``seconds``)."""
    if client == "wrk":
        return lambda port, path, bodies, c, seconds: wrk_load.load(port, path, bodies, c,
                                                                    seconds, KEY)
    return lambda port, path, bodies, c, seconds: asyncio.run(
        load(port, path, bodies[:requests], c, seconds))


def serve_rows(items, seconds, env, measure, workers: int = 1) -> list[dict]:
    """``polarity serve`` with one worker using every core, or ``workers`` workers of one
    model thread each (a key's rate limit is then counted per worker unless REDIS_URL)."""
    port = free_port()
    cmd = [sys.executable, "-m", "polarity", "serve", "--port", str(port),
           "--rate-limit", "100000000/hour", "--log-level", "warning"]
    label = "polarity serve /api/v1/analyze"
    # the key from the environment (a flag shows in ps); a throughput run's limit is
    # unreachable, so its workers may count it apart
    env = {**env, "API_KEY": KEY, "ALLOW_UNSHARED_LIMITS": "true"}
    if workers > 1:
        cmd += ["--workers", str(workers), "--threads", "1"]
        label += f" --workers {workers} --threads 1"
    return server_rows(label, cmd, port, env, "/api/v1/analyze",
                       [{"text": t} for t in items], seconds, measure)


def peer_rows(items, seconds, env, measure) -> list[dict]:
    python, model = peer_python(), peer_model()
    port = free_port()
    cmd = [str(python.with_name("infinity_emb")), "v2", "--model-id", str(model), "--engine",
           "torch", "--device", "cpu", "--port", str(port), "--batch-size", "32"]
    return server_rows("infinity-emb 0.0.78 --engine torch /classify", cmd, port, env,
                       "/classify", [{"input": [t], "model": str(model)} for t in items],
                       seconds, measure, health="/health")


def naive_rows(items, seconds, env, measure) -> list[dict]:
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).with_name("naive_app.py")), str(port)]
    return server_rows("naive FastAPI + transformers fp32", cmd, port, env, "/api/v1/analyze",
                       [{"text": t} for t in items], seconds, measure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per measurement")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="per measurement")
    parser.add_argument("--quick", action="store_true", help="1000 requests, 6 s each")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator: wrk when installed (auto), else asyncio")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.max_seconds = 1000, 6.0
    client = ("wrk" if wrk_load.available() else "python") if args.client == "auto" \
        else args.client
    measure = loader(client, args.requests)
    from polarity.evaluate.setup import cpu

    # wrk runs for the whole time: enough unique texts that none is sent twice
    unique = max(args.requests, int(args.max_seconds * 3000) if client == "wrk" else 0)
    items = texts(unique + 200, 20, 1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LOG_LEVEL": "warning",
           "TOKENIZERS_PARALLELISM": "false"}
    facts, ceiling = roofline(items)
    engine = engine_rows("default", "auto", {"tweet ~20 words": items[:args.requests + 200]},
                         os.cpu_count() or 1)
    rows = [{**engine[0], "what": "engine (Predictor, batch 32; p50 at batch 1)"}]
    rows += serve_rows(items, args.max_seconds, env, measure)
    if (os.cpu_count() or 1) > 1:
        rows += serve_rows(items, args.max_seconds, env, measure, workers=os.cpu_count())
    if not args.skip_peer:
        rows += peer_rows(items, args.max_seconds, env, measure)
    if not args.skip_naive:
        rows += naive_rows(items, args.max_seconds, env, measure)

    peer = {r["c"]: r["rps"] for r in rows if r["what"].startswith("infinity")}
    machine = cpu()
    print(f"\nmachine: {machine['name']}, {machine['cores']} cores "
          f"({' '.join(machine['extensions'])}); one worker each unless a row says; load by "
          f"{'wrk' if client == 'wrk' else 'the asyncio client'}\n")
    for f in facts:
        print(f"- {f['what']}: {f['value']}")
    print("\n| what | concurrency | requests | errors | req/s | p50 ms | p99 ms | of the int8 "
          "roofline | of the graph's | / infinity-emb |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['rps'] / peer[r['c']]:.2f}" if r["c"] in peer else "-"
        print(f"| {r['what']} | {r['c']} | {r['requests']} | {r['errors']} | {r['rps']:.0f} | "
              f"{r['p50']:.1f} | {r['p99']:.1f} | {r['rps'] / ceiling['int8_texts_s']:.0%} | "
              f"{r['rps'] / ceiling['graph_texts_s']:.0%} | {ratio} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"facts": facts, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
