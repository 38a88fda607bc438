"""``/metrics``: Prometheus metrics of this worker."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from polarity.serve.deps import Service
from polarity.serve.settings import Settings


def router(settings: Settings) -> APIRouter:
    r = APIRouter(tags=["ops"])
    r.add_api_route("/metrics", prometheus_metrics, methods=["GET"], response_class=Response,
                    responses={200: {"content": {"text/plain": {}}}})
    return r


async def prometheus_metrics(state: Service):
    """Prometheus metrics of this worker."""
    if state.runner:
        state.metrics.queue_depth.set(state.runner.depth)
    state.metrics.update_drift()
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
