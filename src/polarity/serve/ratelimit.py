"""Per-key moving-window rate limits through the `limits` library: in memory by default,
Redis when ``REDIS_URL`` is set, so the limit holds across workers and replicas.

When the storage fails (Redis down, or stopped and not answering) the limit fails
``closed`` (503 with the reason; the default: no request goes unmetered) or ``open`` (the
request is served unmetered, a warning logged), as ``rate_limit_on_error`` says. Each
request has its own deadline (``timeout``) for everything the limit costs it, waiting for
its key's lock included: with a per-key lock and only a socket timeout, 20 requests of one
key behind a stopped Redis waited one after the other, up to 9.9 s for a 0.5 s timeout."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from polarity.errors import InputError
from polarity.serve.errors import LimiterUnavailable, RateLimited, TooCostly

log = logging.getLogger("polarity.serve")


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window frees its oldest unit
    retry_after: int | None = None
    """Seconds until a refused request's whole cost is free again."""

    def headers(self) -> dict[str, str]:
        h = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
             "X-RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            h["Retry-After"] = str(self.retry_after or max(1, self.reset - math.floor(time.time())))
        return h


REDIS_SCHEMES = ("redis", "rediss", "redis+unix")


class RateLimiter:
    def __init__(self, rate: str, redis_url: str | None = None, on_error: str = "closed",
                 timeout: float = 0.5):
        try:
            self.item = parse(rate)
        except ValueError as exc:
            raise InputError(f"RATE_LIMIT {rate!r} is not valid: use e.g. '1000/hour'") from exc
        self.on_error, self.timeout = on_error, timeout
        if redis_url:
            scheme = redis_url.partition("://")[0]
            if scheme not in REDIS_SCHEMES or "://" not in redis_url:
                # Only the scheme: the rest of a Redis URL may hold its password.
                raise InputError(f"REDIS_URL (scheme {scheme[:20]!r}) is not valid: use e.g. "
                                 "redis://host:6379/0 (or rediss://, redis+unix://)")
            self.storage = storage_from_string(f"async+{redis_url}", implementation="redispy",
                                               socket_timeout=timeout,
                                               socket_connect_timeout=timeout)
        else:
            self.storage = storage_from_string("async+memory://")
        self.limiter = MovingWindowRateLimiter(self.storage)
        # Within a worker, a key's hit and its window count are read together, so that
        # X-RateLimit-Remaining is exact for concurrent requests of one key.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def spend(self, identity: str, cost: int = 1) -> Decision:
        """Spend ``cost`` units for ``identity`` or raise: :class:`TooCostly` when the cost is
        more than the whole limit (no retry could succeed), :class:`RateLimited` when the
        window is full (nothing is spent), :class:`LimiterUnavailable` when the storage
        fails and the limit fails closed."""
        self.check_cost(cost)
        try:
            decision = await self._by_deadline(self._hit(identity, cost))
        except Exception as exc:  # noqa: BLE001 - redis and network errors of every kind
            if self.on_error == "open":
                log.warning("rate-limit storage failed (%s); serving unmetered (fail open)",
                            type(exc).__name__)
                return Decision(True, self.item.amount, self.item.amount, 0)
            raise LimiterUnavailable("the rate limiter's storage is not answering "
                                     f"({type(exc).__name__}); retry shortly",
                                     {"Retry-After": "5"}) from exc
        if not decision.allowed:
            decision.retry_after = self._retry_after(decision, cost)
            raise RateLimited(f"rate limit of {self.item} per key exceeded; retry after the "
                              "Retry-After seconds", decision.headers())
        return decision

    def _retry_after(self, decision: Decision, cost: int) -> int:
        """When ``cost`` units will be free: the oldest unit's expiry frees one; a moving
        window frees the others as they expire, which the storage does not tell, so for a
        cost of several units the answer is the whole window (an upper bound: by then every
        unit spent now has expired)."""
        if cost - decision.remaining <= 1:
            return max(1, decision.reset - math.floor(time.time()))
        return int(self.item.get_expiry())

    def check_cost(self, cost: int) -> None:
        """:class:`TooCostly` when ``cost`` is more than the whole limit: no retry could
        succeed, so it is refused before anything else."""
        if cost > self.item.amount:
            raise TooCostly(f"this request costs {cost} units (a text costs one per "
                            f"QUOTA_UNIT_TOKENS tokens), more than this key's whole limit of "
                            f"{self.item}: send fewer or shorter texts")

    async def _by_deadline(self, work):
        """``work``'s result, or TimeoutError once ``timeout`` has passed. The abandoned work
        is cancelled but not waited for: redis-py closes the stalled connection on
        cancellation, which can itself take a socket timeout (with ``asyncio.wait_for`` the
        answer came after 1.02 s instead of 0.5)."""
        task = asyncio.ensure_future(work)
        try:
            await asyncio.wait({task}, timeout=self.timeout)
        except asyncio.CancelledError:  # the client has gone
            task.cancel()
            raise
        if task.done():
            return task.result()
        task.cancel()
        task.add_done_callback(_forget)
        raise TimeoutError(f"no answer within {self.timeout} s")

    async def _hit(self, identity: str, cost: int) -> Decision:
        async with self._locks[identity]:
            allowed = await self.limiter.hit(self.item, identity, cost=cost)
            stats = await self.limiter.get_window_stats(self.item, identity)
        return Decision(allowed, self.item.amount, max(0, stats.remaining),
                        math.ceil(stats.reset_time))

    async def healthy(self) -> bool:
        try:
            return bool(await self._by_deadline(self.storage.check()))
        except Exception:  # noqa: BLE001 - any storage failure means "not healthy"
            return False


def _forget(task: asyncio.Task) -> None:
    """Retrieve an abandoned call's outcome, so that asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()
