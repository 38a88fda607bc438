"""The FastAPI app factory: settings, middleware, error handlers, the router, and a lifespan
that loads the model before the server accepts a connection."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from polarity.errors import PolarityError
from polarity.predictor import Predictor
from polarity.serve import errors
from polarity.serve.metrics import ServiceMetrics
from polarity.serve.middleware import BodyLimit, Observe, OpenRoutes
from polarity.serve.ratelimit import RateLimiter
from polarity.serve.routes import LOGGED_TAG, router
from polarity.serve.security import KeyStore, RequireKey
from polarity.serve.settings import Settings, load_settings
from polarity.serve.tiers import Tiers
from polarity.version import __version__

log = logging.getLogger("polarity.serve")


def create_app(settings: Settings | None = None,
               predictor: Predictor | Mapping[str, Predictor] | None = None) -> FastAPI:
    """Build the service. Pass ``predictor`` to serve an already loaded model (tests): one for
    the default model, or one per served model's name."""
    settings = settings or load_settings()
    keys = KeyStore.build(settings.accepted_plain_keys(), settings.api_keys_file)
    if not keys and not settings.auth_disabled:
        raise PolarityError("no API keys configured: set API_KEY, API_KEYS or API_KEYS_FILE "
                            "(create one with `polarity keys create --file FILE`), or set "
                            "AUTH_DISABLED=true for a local experiment")
    limiter = RateLimiter(settings.rate_limit, settings.redis_url,
                          settings.rate_limit_on_error, settings.redis_timeout_s)
    metrics = ServiceMetrics()
    tiers = Tiers.build(settings, metrics, limiter)
    state = tiers.default

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.started = time.time()
        await tiers.load(predictor)  # before the server accepts its first connection
        loop = asyncio.get_running_loop()
        try:  # SIGHUP re-reads the keys file at once (it is also re-read when it changes)
            loop.add_signal_handler(signal.SIGHUP, keys.reload)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
        yield
        await tiers.close()  # each finishes its queued requests before the process exits

    # /docs is our own page (routes/docs.py): FastAPI's loads Swagger UI from a CDN.
    app = FastAPI(title="polarity", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url="/openapi.json" if settings.docs_enabled else None,
                  description="Binary sentiment analysis: every text is POSITIVE or NEGATIVE, "
                  "with a calibrated confidence and, on request, a reason.")
    app.state.service = state  # the default model's
    app.state.tiers = tiers
    app.state.metrics = metrics
    errors.install(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequireKey, keys=None if settings.auth_disabled else keys,
                       open_paths=settings.open_endpoints)
    app.add_middleware(OpenRoutes, routes=settings.open_endpoints)
    app.add_middleware(Observe, metrics=metrics, max_body_bytes=settings.max_body_bytes,
                       logged_tag=LOGGED_TAG)
    app.include_router(router(settings))
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: settings from the environment."""
    return create_app(load_settings())
