"""The HTTP endpoints. Transport only: every prediction goes through the Predictor, every
failure is a domain error that ``errors.STATUS`` turns into a status code."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from polarity.contract import Prediction, is_blank
from polarity.errors import InputError
from polarity.predictor import Predictor
from polarity.serve.batching import Admission, MicroBatcher, ModelRunner
from polarity.serve.errors import ERROR_RESPONSES, ClientGone, ModelNotReady, TooCostly
from polarity.serve.metrics import ServiceMetrics
from polarity.serve.ratelimit import RateLimiter
from polarity.serve.schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    BatchRequest,
    BatchResponse,
    HealthResponse,
)
from polarity.serve.settings import Settings

router = APIRouter()
access_log = logging.getLogger("polarity.access")


@dataclass
class ServiceState:
    """Everything a request needs, built by the app factory and its lifespan."""

    settings: Settings
    metrics: ServiceMetrics
    limiter: RateLimiter
    admission: Admission
    predictor: Predictor | None = None
    batcher: MicroBatcher | None = None
    runner: ModelRunner | None = None
    started: float = field(default_factory=time.time)


@dataclass
class Ready:
    predictor: Predictor
    batcher: MicroBatcher
    runner: ModelRunner


def service(request: Request) -> ServiceState:
    return request.app.state.service


def ready(state: Annotated[ServiceState, Depends(service)]) -> Ready:
    if state.predictor is None or state.batcher is None or state.runner is None:
        raise ModelNotReady("the model is still loading; retry shortly", {"Retry-After": "2"})
    return Ready(state.predictor, state.batcher, state.runner)


# Documents the key in the OpenAPI schema; the check itself runs in the RequireKey
# middleware, before the body is read.
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="An API key from `polarity keys create`.")


def key_id(request: Request, _: Annotated[str | None, Security(_api_key)]) -> str:
    return request.scope.get("state", {}).get("key_id") or "anonymous"


Service = Annotated[ServiceState, Depends(service)]
Model = Annotated[Ready, Depends(ready)]
KeyId = Annotated[str, Depends(key_id)]


@router.post("/api/v1/analyze", response_model=AnalyzeResponse, responses=ERROR_RESPONSES,
             tags=["analyze"])
async def analyze(body: AnalyzeRequest, request: Request, response: Response, state: Service,
                  model: Model, key: KeyId):
    """Classify one text. Concurrent calls are micro-batched into one model call."""
    start = time.perf_counter()
    _check_text(state.settings, body.text, "text")
    if body.include_reasoning and state.settings.max_reasoning_texts < 1:
        raise TooCostly("reasons are turned off on this server (MAX_REASONING_TEXTS=0)")
    pred = await _admitted(request, state, key, 1, response,
                           lambda: model.batcher.submit(body.text, body.include_reasoning))
    state.metrics.queue_depth.set(model.batcher.depth)
    request.state.summary = {"text_chars": len(body.text), "prediction": pred.label,
                             "confidence": round(pred.confidence, 4)}
    if access_log.isEnabledFor(logging.DEBUG):  # which early exit answered: debug only
        request.state.summary["exit_layer"] = pred.exit_layer
    if state.settings.log_texts:
        request.state.summary["text"] = body.text
    return _result(state, body.text, pred, time.perf_counter() - start)


@router.post("/api/v1/analyze/batch", response_model=BatchResponse, responses=ERROR_RESPONSES,
             tags=["analyze"])
async def analyze_batch(body: BatchRequest, request: Request, response: Response,
                        state: Service, model: Model, key: KeyId):
    """Classify several texts in one model call; each text costs one rate-limit unit."""
    start = time.perf_counter()
    s = state.settings
    if len(body.texts) > s.max_batch_items:
        raise InputError(f"texts has {len(body.texts)} items; the limit is "
                         f"{s.max_batch_items}: split the batch")
    if body.include_reasoning and len(body.texts) > s.max_reasoning_texts:
        raise TooCostly(f"reasons were asked for {len(body.texts)} texts; the limit is "
                        f"{s.max_reasoning_texts} per request, as each costs up to 48 model "
                        "passes: split the batch or leave include_reasoning off")
    for i, text in enumerate(body.texts):
        _check_text(s, text, f"texts[{i}]")
    state.metrics.batch_size.observe(len(body.texts))
    preds = await _admitted(request, state, key, len(body.texts), response,
                            lambda: model.runner.run(body.texts, body.include_reasoning))
    elapsed = time.perf_counter() - start
    request.state.summary = {"text_chars": sum(map(len, body.texts)), "items": len(body.texts)}
    return {"results": [_result(state, t, p, elapsed)
                        for t, p in zip(body.texts, preds, strict=True)],
            "total_processing_time": elapsed}


@router.get("/api/v1/health", response_model=HealthResponse, tags=["ops"],
            responses={503: {"model": HealthResponse, "description": "Not ready."}})
async def health(state: Service):
    """Liveness and readiness: 200 once the model is loaded and the rate limiter answers,
    503 otherwise (``status`` and ``checks`` say which)."""
    p = state.predictor
    limiter_ok = await state.limiter.healthy()
    body = {"status": "ok" if p and limiter_ok else "loading" if not p else "degraded",
            "model_loaded": p is not None, "gpu_available": _gpu_available(),
            "memory_usage": _memory(), "uptime": time.time() - state.started,
            "pid": os.getpid(), "checks": {"model": p is not None, "rate_limiter": limiter_ok},
            "model": {"name": p.info.name, "backend": p.info.backend,
                      "version": p.info.version} if p else None}
    return JSONResponse(body, status_code=200 if p and limiter_ok else 503)


@router.get("/metrics", tags=["ops"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def prometheus_metrics(state: Service):
    """Prometheus metrics of this worker."""
    if state.batcher:
        state.metrics.queue_depth.set(state.batcher.depth)
    state.metrics.update_drift()
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _admitted(request: Request, state: ServiceState, key: str, texts: int,
                    response: Response, work: Callable[[], Awaitable]):
    """Admit ``texts`` (503 when the queue is full: before any quota is spent), spend the
    key's quota, then do ``work``, dropped if the client disconnects before it is done."""
    state.limiter.check_cost(texts)  # refusals no retry can change come first
    state.admission.take(texts)
    try:
        decision = await state.limiter.spend(key, texts)
        response.headers.update(decision.headers())
        return await _unless_disconnected(request, work())
    finally:
        state.admission.give_back(texts)


async def _unless_disconnected(request: Request, work: Awaitable):
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(request.receive())  # after the body: only a disconnect
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not task.done():
        task.cancel()  # queued texts are dropped; a running model call finishes unused
        raise ClientGone("the client disconnected before the answer was ready")
    return task.result()


def _check_text(settings: Settings, text: str, where: str) -> None:
    if is_blank(text):
        raise InputError(f"{where} is empty or only whitespace, control or zero-width "
                         "characters")
    if len(text) > settings.max_text_chars:
        raise InputError(f"{where} has {len(text)} characters; the limit is "
                         f"{settings.max_text_chars} (MAX_TEXT_CHARS)")


def _result(state: ServiceState, text: str, pred: Prediction, seconds: float) -> dict:
    state.metrics.observe_prediction(pred.label, pred.confidence)
    return {"text": text, **pred.to_json(), "processing_time": seconds}


def _memory() -> dict[str, float]:
    try:
        import psutil

        rss = psutil.Process().memory_info().rss
    except ImportError:  # pragma: no cover
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"rss_mb": round(rss / 2**20, 1)}
    if _gpu_available():
        torch = sys.modules["torch"]
        out["gpu_allocated_mb"] = round(torch.cuda.memory_allocated() / 2**20, 1)
    return out


def _gpu_available() -> bool:
    # A backend that never imported torch (VADER) cannot be using a GPU; importing it here
    # would block the event loop for seconds.
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_available())
    except AttributeError:  # torch is being imported by the loader thread right now
        return False
