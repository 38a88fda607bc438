"""What a request depends on: the service's state, the model once it is ready, the caller's
key, and admission (queue room, then quota, then the work, dropped if the client goes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPBearer

from polarity.contract import Prediction
from polarity.predictor import Predictor
from polarity.serve.batching import Admission, ModelRunner
from polarity.serve.errors import ClientGone, ModelNotReady
from polarity.serve.escalation import Escalation
from polarity.serve.metrics import TierMetrics
from polarity.serve.ratelimit import RateLimiter
from polarity.serve.settings import Settings


@dataclass
class ServiceState:
    """Everything a request to one served model needs, built by the app factory and its
    lifespan (:mod:`polarity.serve.tiers`: one per model, each with its own queue and model
    thread; the settings and the rate limiter are shared)."""

    settings: Settings
    metrics: TierMetrics
    limiter: RateLimiter
    admission: Admission
    predictor: Predictor | None = None
    runner: ModelRunner | None = None
    """The model thread, shared fairly between keys (:mod:`batching`)."""
    escalation: Escalation | None = None
    """A cascade's accurate stage, in its own lane; None for other models."""
    started: float = field(default_factory=time.time)
    name: str = "default"
    """The name a request gives in ``model`` to pick this one."""
    target: str = "default"
    """What was loaded: a model name or folder."""
    cost: int = 1
    """Quota units per text unit (:attr:`polarity.registry.Backend.cost`)."""

    async def one(self, text: str, reasoning: bool, *, key: str, work: int | None = None
                  ) -> Prediction:
        """One text for ``key``, in that key's turn; ``work``: its tokens (the price in the
        round robin between keys; None: its characters)."""
        started = time.perf_counter()
        pred = (await self.runner.run([text], reasoning, None if work is None else [work],
                                      key))[0]
        if self.escalation is None:
            return pred
        self.metrics.stage_latency.labels("fast").observe(time.perf_counter() - started)
        return await self.escalation.answer(text, pred, reasoning, key)

    async def many(self, texts: list[str], reasoning: bool, work: list[int], *, key: str
                   ) -> list[Prediction]:
        """Several texts for ``key``, in that key's turns: a large request waits behind
        its own key's work, not in front of everyone else's."""
        preds = await self.runner.run(texts, reasoning, work, key)
        if self.escalation is None:
            return preds
        return list(await asyncio.gather(*(self.escalation.answer(t, p, reasoning, key)
                                           for t, p in zip(texts, preds, strict=True))))


# Coroutines, not plain functions: FastAPI runs a plain dependency on a worker thread, and
# three such hops a request cost the event loop 13% of its time (c=64: 446 -> 498 req/s).
async def service(request: Request) -> ServiceState:
    return request.app.state.service


async def ready(state: Annotated[ServiceState, Depends(service)]) -> ServiceState:
    if state.predictor is None:
        raise ModelNotReady("the model is still loading; retry shortly", {"Retry-After": "2"})
    return state


# Document the key's two headers in the OpenAPI schema; the check itself runs in
# security.RequireKey, before the body is read.
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="An API key from `polarity keys create`.")
_bearer = HTTPBearer(auto_error=False, description="The same key in the Authorization "
                     "header (Hugging Face, TEI and OpenAI-style clients).")


async def key_id(request: Request, _: Annotated[str | None, Security(_api_key)],
                 __: Annotated[object, Security(_bearer)]) -> str:
    return request.scope.get("state", {}).get("key_id") or "anonymous"


Service = Annotated[ServiceState, Depends(service)]
Model = Annotated[ServiceState, Depends(ready)]
KeyId = Annotated[str, Depends(key_id)]


async def admitted(request: Request, state: ServiceState, key: str, texts: int, cost: int,
                   response: Response, work: Callable[[], Awaitable]):
    """Admit ``texts`` (503 when the queue is full: before any quota is spent), spend the
    key's ``cost`` units, then do ``work``, dropped if the client disconnects first."""
    state.limiter.check_cost(cost)  # refusals no retry can change come first
    state.admission.take(texts)
    try:
        decision = await state.limiter.spend(key, cost)
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
