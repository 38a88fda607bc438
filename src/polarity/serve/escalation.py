"""A cascade in the service: the fast stage answers every text through the usual model runner;
the texts it is unsure of go on to the accurate stage, which has its own model runner (its
own thread, shared fairly between keys) and its own bounded queue, so a burst of hard texts
never stalls easy ones.

When that queue is full (``MAX_ESCALATION_QUEUE``) or the escalations-per-second cap
(``MAX_ESCALATIONS_PER_S``) is reached, the text keeps its fast answer and says so:
``"tier": "fast", "escalation": "queue_full"`` or ``"rate_capped"``, never silently.
"""

from __future__ import annotations

import dataclasses
import time

from polarity.backends.cascade import ESCALATED, NOT_NEEDED, CascadeBackend
from polarity.contract import Prediction
from polarity.serve.batching import ModelRunner
from polarity.serve.metrics import TierMetrics

QUEUE_FULL, RATE_CAPPED = "queue_full", "rate_capped"


class TokenBucket:
    """At most ``rate`` takes a second on average, ``burst`` at once; ``rate`` None: no cap."""

    def __init__(self, rate: float | None, burst: float | None = None,
                 clock=time.monotonic):
        self.rate, self.clock = rate, clock
        self.capacity = burst if burst is not None else max(1.0, rate or 0.0)
        self.tokens, self.stamp = self.capacity, clock()

    def take(self) -> bool:
        if self.rate is None:
            return True
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Escalation:
    """The second stage of a served cascade."""

    def __init__(self, cascade: CascadeBackend, batch_size: int, max_queue: int,
                 max_per_second: float | None, metrics: TierMetrics):
        self.cascade, self.metrics = cascade, metrics
        self.max_queue, self.waiting = max_queue, 0
        self.bucket = TokenBucket(max_per_second)
        self.runner = ModelRunner(cascade.second.predict, batch_size)

    async def answer(self, text: str, fast: Prediction, reasoning: bool, key: str
                     ) -> Prediction:
        """``fast`` (the first stage's prediction of ``text``) or, if the cascade sends the
        text on and there is room, the second stage's."""
        if not self.cascade.needs_second([fast.scores["POSITIVE"]])[0]:
            return dataclasses.replace(fast, escalation=NOT_NEEDED)
        reason = (QUEUE_FULL if self.waiting >= self.max_queue
                  else None if self.bucket.take() else RATE_CAPPED)
        if reason:
            self.metrics.escalation_fallbacks.labels(reason).inc()
            return dataclasses.replace(fast, escalation=reason)
        self.waiting += 1
        started = time.perf_counter()
        try:
            accurate = (await self.runner.run([text], reasoning, key=key))[0]
        finally:
            self.waiting -= 1
        self.metrics.escalations.inc()
        self.metrics.stage_latency.labels("accurate").observe(time.perf_counter() - started)
        return dataclasses.replace(accurate, escalation=ESCALATED)

    async def close(self) -> None:
        await self.runner.drain()
        self.runner.close()
