"""Per-key moving-window rate limits through the `limits` library: in memory by default,
Redis when ``REDIS_URL`` is set, so the limit holds across workers and replicas."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from polarity.errors import InputError


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window frees up

    def headers(self) -> dict[str, str]:
        h = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
             "X-RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            h["Retry-After"] = str(max(1, self.reset - math.floor(time.time())))
        return h


REDIS_SCHEMES = ("redis", "rediss", "redis+unix")


class RateLimiter:
    def __init__(self, rate: str, redis_url: str | None = None):
        try:
            self.item = parse(rate)
        except ValueError as exc:
            raise InputError(f"RATE_LIMIT {rate!r} is not valid: use e.g. '1000/hour'") from exc
        if redis_url:
            scheme = redis_url.partition("://")[0]
            if scheme not in REDIS_SCHEMES or "://" not in redis_url:
                raise InputError(f"REDIS_URL {redis_url!r} is not valid: use e.g. "
                                 "redis://host:6379/0 (or rediss://, redis+unix://)")
            self.storage = storage_from_string(f"async+{redis_url}", implementation="redispy")
        else:
            self.storage = storage_from_string("async+memory://")
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, identity: str, cost: int = 1) -> Decision:
        """Spend ``cost`` units for ``identity``; a request over the limit spends nothing."""
        allowed = await self.limiter.hit(self.item, identity, cost=cost)
        stats = await self.limiter.get_window_stats(self.item, identity)
        return Decision(allowed, self.item.amount, max(0, stats.remaining),
                        math.ceil(stats.reset_time))

    async def healthy(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:  # noqa: BLE001 - any storage failure means "not healthy"
            return False
