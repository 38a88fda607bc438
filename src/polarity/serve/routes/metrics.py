"""``/metrics``: Prometheus metrics of this worker."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from polarity.serve.settings import Settings


def router(settings: Settings) -> APIRouter:
    r = APIRouter(tags=["ops"])
    r.add_api_route("/metrics", prometheus_metrics, methods=["GET"], response_class=Response,
                    responses={200: {"content": {"text/plain": {}}}})
    return r


async def prometheus_metrics(request: Request):
    """Prometheus metrics of this worker; series about a model carry its name (``model``)."""
    for tier in request.app.state.tiers:
        if tier.runner:
            tier.metrics.queue_depth.set(tier.runner.depth)
        tier.metrics.update_drift()
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
