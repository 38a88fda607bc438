"""Speed profile of a loaded predictor: single-text latency, batch throughput, memory."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence

import numpy as np

from polarity.predictor import Predictor


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def profile(predictor: Predictor, texts: Sequence[str], load_seconds: float | None = None,
            single: int = 200, batch_sizes: Sequence[int] = (1, 8, 32, 128),
            throughput_texts: int = 512) -> dict:
    """Latency over up to ``single`` texts one at a time (after a warm-up), and throughput
    at each batch size over up to ``throughput_texts`` texts."""
    texts = list(texts)
    predictor.predict(texts[:4], batch_size=4)  # warm-up: lazy init, allocator, caches
    latencies = []
    for text in texts[:single]:
        start = time.perf_counter()
        predictor.predict([text], batch_size=1)
        latencies.append((time.perf_counter() - start) * 1000)
    lat = np.asarray(latencies)
    sample = (texts * (throughput_texts // len(texts) + 1))[:throughput_texts]
    throughput = {}
    for bs in batch_sizes:
        start = time.perf_counter()
        predictor.predict(sample, batch_size=bs)
        throughput[str(bs)] = len(sample) / (time.perf_counter() - start)
    out = {
        "latency_ms": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
                       "p99": float(np.percentile(lat, 99)), "mean": float(lat.mean()),
                       "n": len(lat)},
        "latencies_ms": [round(x, 3) for x in latencies],
        "throughput_texts_per_s": throughput,
        "load_seconds": load_seconds,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    try:
        import torch

        if torch.cuda.is_available():
            out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except ImportError:  # pragma: no cover
        pass
    return out
