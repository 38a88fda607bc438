"""The HTTP endpoints, one module per resource. Transport only: every prediction goes through
the Predictor, every failure is a domain error that ``errors.STATUS`` turns into a status
code."""

from __future__ import annotations

from fastapi import APIRouter

from polarity.serve.routes import analyze, health, metrics, models, page, tei, vllm
from polarity.serve.settings import Settings

#: Requests to routes with this tag get one access-log line each.
LOGGED_TAG = analyze.TAG


def router(settings: Settings) -> APIRouter:
    """Every route, with this server's limits in the request schemas."""
    out = APIRouter()
    for module in (analyze, tei, vllm, models, health, metrics, page):
        out.include_router(module.router(settings))
    return out
