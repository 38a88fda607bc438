"""The HTTP endpoints, one module per resource. Transport only: every prediction goes through
the Predictor, every failure is a domain error that ``errors.STATUS`` turns into a status
code."""

from __future__ import annotations

from fastapi import APIRouter

from polarity.serve.routes import analyze, docs, health, metrics, models, page, tei, vllm
from polarity.serve.settings import Settings

#: Requests to routes with this tag get one access-log line each.
LOGGED_TAG = analyze.TAG


def router(settings: Settings) -> APIRouter:
    """Every route, with this server's limits in the request schemas (/metrics and /docs
    only when enabled)."""
    out = APIRouter()
    modules = [analyze, tei, vllm, models, health, page,
               *([metrics] if settings.metrics_enabled else []),
               *([docs] if settings.docs_enabled else [])]
    for module in modules:
        out.include_router(module.router(settings))
    return out
