"""The FastAPI app factory. Transport only: every prediction goes through the Predictor."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from polarity import __version__
from polarity.errors import InputError, PolarityError
from polarity.prediction import is_blank
from polarity.predictor import Predictor, load_classifier
from polarity.serve import errors
from polarity.serve.batching import MicroBatcher, ModelRunner, Overloaded
from polarity.serve.errors import ERROR_RESPONSES, ApiError
from polarity.serve.metrics import ServiceMetrics
from polarity.serve.middleware import BodyLimit, Observe
from polarity.serve.ratelimit import RateLimiter
from polarity.serve.schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    BatchRequest,
    BatchResponse,
    HealthResponse,
)
from polarity.serve.security import KeyStore
from polarity.serve.settings import Settings, load_settings

log = logging.getLogger("polarity.serve")


@dataclass
class ServiceState:
    settings: Settings
    predictor: Predictor | None = None
    batcher: MicroBatcher | None = None
    runner: ModelRunner | None = None
    load_error: str | None = None
    started: float = field(default_factory=time.time)


def create_app(settings: Settings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """Build the service. Pass ``predictor`` to serve an already loaded model (tests)."""
    settings = settings or load_settings()
    keys = KeyStore.build(settings.accepted_plain_keys(), settings.api_keys_file)
    if not keys and not settings.auth_disabled:
        raise PolarityError("no API keys configured: set API_KEY, API_KEYS or API_KEYS_FILE "
                            "(create one with `polarity keys create --file FILE`), or set "
                            "AUTH_DISABLED=true for a local experiment")
    limiter = RateLimiter(settings.rate_limit, settings.redis_url)
    metrics = ServiceMetrics()
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.started = time.time()
        loader = asyncio.create_task(_load(state, predictor, metrics))
        yield
        loader.cancel()
        if state.batcher:
            await state.batcher.drain()  # finish queued requests before the process exits
        if state.runner:
            state.runner.close()

    app = FastAPI(title="polarity", version=__version__, lifespan=lifespan,
                  description="Binary sentiment analysis: every text is POSITIVE or NEGATIVE, "
                  "with a calibrated confidence and, on request, a reason.")
    app.state.service = state
    app.state.metrics = metrics
    errors.install(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Observe, metrics=metrics, max_body_bytes=settings.max_body_bytes)

    async def require_key(request: Request) -> str:
        if settings.auth_disabled:
            return "anonymous"
        kid = keys.check(request.headers.get("x-api-key"))
        if kid is None:
            raise ApiError(401, "unauthorized", "missing or invalid API key: send it in the "
                           "X-API-Key header", {"WWW-Authenticate": "ApiKey"})
        request.state.key_id = kid
        return kid

    def gate(path: str) -> list:
        return [] if path in settings.open_endpoints else [Depends(require_key)]

    async def spend(key: str, cost: int, response: Response) -> None:
        decision = await limiter.hit(key, cost)
        if not decision.allowed:
            raise ApiError(429, "rate_limited", f"rate limit of {settings.rate_limit} per key "
                           "exceeded; retry after the Retry-After seconds", decision.headers())
        response.headers.update(decision.headers())

    def ready() -> tuple[Predictor, MicroBatcher]:
        if state.predictor is None or state.batcher is None:
            raise ApiError(503, "model_loading", "the model is still loading; retry shortly",
                           {"Retry-After": "2"})
        return state.predictor, state.batcher

    def check_text(text: str, where: str) -> None:
        if is_blank(text):
            raise ApiError(400, "invalid_request", f"{where} is empty or only whitespace, "
                           "control or zero-width characters")
        if len(text) > settings.max_text_chars:
            raise ApiError(400, "invalid_request", f"{where} has {len(text)} characters; the "
                           f"limit is {settings.max_text_chars}")

    def result(text: str, pred, seconds: float) -> dict:
        metrics.observe_prediction(pred.label, pred.confidence)
        return {"text": text, "predicted_sentiment": pred.label, "confidence": pred.confidence,
                "scores": pred.scores, "reasoning": pred.reasoning, "windows": pred.windows,
                "processing_time": seconds}

    @app.post("/api/v1/analyze", response_model=AnalyzeResponse, responses=ERROR_RESPONSES,
              dependencies=gate("/api/v1/analyze"), tags=["analyze"])
    async def analyze(body: AnalyzeRequest, request: Request, response: Response):
        """Classify one text. Concurrent calls are micro-batched into one model call."""
        start = time.perf_counter()
        check_text(body.text, "text")
        _, batcher = ready()
        await spend(getattr(request.state, "key_id", "anonymous"), 1, response)
        try:
            pred = await batcher.submit(body.text, body.include_reasoning)
        except Overloaded:
            raise ApiError(503, "overloaded", "too many requests are waiting for the model; "
                           "retry shortly", {"Retry-After": "1"}) from None
        metrics.queue_depth.set(batcher.depth)
        request.state.summary = {"text_chars": len(body.text), "prediction": pred.label,
                                 "confidence": round(pred.confidence, 4)}
        if settings.log_texts:
            request.state.summary["text"] = body.text
        return result(body.text, pred, time.perf_counter() - start)

    @app.post("/api/v1/analyze/batch", response_model=BatchResponse, responses=ERROR_RESPONSES,
              dependencies=gate("/api/v1/analyze/batch"), tags=["analyze"])
    async def analyze_batch(body: BatchRequest, request: Request, response: Response):
        """Classify several texts in one model call; each text costs one rate-limit unit."""
        start = time.perf_counter()
        if not body.texts:
            raise ApiError(400, "invalid_request", "texts is empty: send at least one text")
        if len(body.texts) > settings.max_batch_items:
            raise ApiError(400, "invalid_request", f"texts has {len(body.texts)} items; the "
                           f"limit is {settings.max_batch_items}: split the batch")
        for i, text in enumerate(body.texts):
            check_text(text, f"texts[{i}]")
        ready()
        await spend(getattr(request.state, "key_id", "anonymous"), len(body.texts), response)
        metrics.batch_size.observe(len(body.texts))
        preds = await state.runner.run(body.texts, body.include_reasoning)
        elapsed = time.perf_counter() - start
        request.state.summary = {"text_chars": sum(map(len, body.texts)),
                                 "items": len(body.texts)}
        return {"results": [result(t, p, elapsed)
                            for t, p in zip(body.texts, preds, strict=True)],
                "total_processing_time": elapsed}

    @app.get("/api/v1/health", response_model=HealthResponse,
             responses={503: {"model": HealthResponse, "description": "Model not loaded yet."}},
             dependencies=gate("/api/v1/health"), tags=["ops"])
    async def health():
        """Liveness and readiness: 200 once the model is loaded, 503 before."""
        p = state.predictor
        body = {"status": "ok" if p else "loading", "model_loaded": p is not None,
                "gpu_available": _gpu_available(), "memory_usage": _memory(),
                "uptime": time.time() - state.started, "pid": os.getpid(),
                "model": {"name": p.info.name, "backend": p.info.backend,
                          "version": p.info.version} if p else None}
        if state.load_error:
            body["status"] = "loading"
            body["error"] = state.load_error
        return JSONResponse(body, status_code=200 if p else 503)

    @app.get("/metrics", dependencies=gate("/metrics"), tags=["ops"],
             response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def prometheus_metrics():
        """Prometheus metrics of this worker."""
        if state.batcher:
            metrics.queue_depth.set(state.batcher.depth)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def _load(state: ServiceState, predictor: Predictor | None, metrics) -> None:
    s = state.settings
    try:
        if predictor is None:
            if s.threads:
                os.environ["POLARITY_NUM_THREADS"] = str(s.threads)
            predictor = await asyncio.to_thread(load_classifier, s.model_path, s.device,
                                                s.runtime)
            if s.max_length and hasattr(predictor, "card"):
                predictor.card.max_length = s.max_length
    except (PolarityError, InputError, OSError) as exc:
        state.load_error = str(exc)
        log.error("model %s failed to load: %s", s.model_path, exc)
        return
    state.runner = ModelRunner(predictor.predict, s.batch_size)
    state.batcher = MicroBatcher(state.runner, s.batch_size, s.max_wait_ms, s.max_queue,
                                 on_batch=metrics.batch_size.observe)
    state.batcher.start()
    state.predictor = predictor
    log.info("model %s loaded (%s)", predictor.info.name, predictor.info.backend)


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


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: settings from the environment."""
    return create_app(load_settings())
