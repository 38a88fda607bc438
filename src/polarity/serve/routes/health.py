"""``/api/v1/health``: liveness (the process answers) apart from readiness (the model is
loaded and the rate limiter answers), so that a Redis outage takes a pod out of the load
balancer instead of restarting it. GET and HEAD both work; without a key they say only
ready or not (the process's details need a key)."""

from __future__ import annotations

import os
import sys
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from polarity.serve.deps import Service
from polarity.serve.schemas import HealthResponse, LiveResponse
from polarity.serve.settings import Settings
from polarity.serve.tiers import describe

TAG = "ops"


def router(settings: Settings) -> APIRouter:
    r = APIRouter(tags=[TAG])
    ready = {200: {"model": HealthResponse, "description": "Ready."},
             503: {"model": HealthResponse, "description": "Not ready."}}
    alive = {200: {"model": LiveResponse, "description": "The process answers (whatever the "
                   "model and the rate limiter say)."}}
    for path, endpoint, responses in (("/api/v1/health", health, ready),
                                      ("/api/v1/health/ready", health, ready),
                                      ("/api/v1/health/live", live, alive)):
        name = path.rsplit("/", 1)[-1]
        r.add_api_route(path, endpoint, methods=["GET"], response_model=None, name=name,
                        responses=responses)
        # HEAD answers the same status without a body (load balancers and probes use it)
        r.add_api_route(path, endpoint, methods=["HEAD"], response_model=None,
                        name=f"{name}-head", include_in_schema=False)
    return r


async def health(state: Service, request: Request):
    """Readiness: 200 once every served model is loaded and the rate limiter answers, 503
    otherwise (``status`` and ``checks`` say which). The process's details (pid, memory,
    uptime, GPU, the models' names and versions) only for a request with a valid key."""
    p = state.predictor
    tiers = list(request.app.state.tiers)
    loaded = all(t.predictor is not None for t in tiers)
    limiter_ok = await state.limiter.healthy()
    body = {"status": "ok" if loaded and limiter_ok else "loading" if not loaded else
            "degraded", "model_loaded": loaded,
            "checks": {"model": loaded, "rate_limiter": limiter_ok}}
    if _with_details(state, request):
        body |= {"gpu_available": _gpu_available(), "memory_usage": _memory(),
                 "uptime": time.time() - state.started, "pid": os.getpid(),
                 "model": {"name": p.info.name, "backend": p.info.backend,
                           "version": p.info.version} if p else None,
                 "models": [describe(t, t is state) for t in tiers]}
    return JSONResponse(body, status_code=200 if loaded and limiter_ok else 503)


async def live(state: Service, request: Request):
    """Liveness: 200 while the process serves HTTP, loading or degraded included (pid and
    uptime only with a valid key)."""
    body = {"status": "alive"}
    if _with_details(state, request):
        body |= {"pid": os.getpid(), "uptime": time.time() - state.started}
    return JSONResponse(body)


def _with_details(state, request: Request) -> bool:
    """A valid key was presented (security.RequireKey checks one on open paths too), or the
    service runs without keys. Without one, health says only whether the service is ready:
    a pid, the memory and the exact version help an attacker more than a load balancer."""
    return state.settings.auth_disabled or "key_id" in request.scope.get("state", {})


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
