"""Pure ASGI middleware: request ids, metrics and the access log, and the body size limit.

Pure ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs every
request through an extra task and memory streams; replacing it gave 17% more requests a
second at concurrency 64 here (docs/performance.md).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time

from starlette.requests import Request

from polarity.serve.errors import BodyTooLarge, too_large_response
from polarity.serve.metrics import ServiceMetrics

access_log = logging.getLogger("polarity.access")


class Observe:
    """Gives every request an id (``X-Request-ID``: :func:`request_id`), counts it in the
    metrics, writes one access-log line per request to a route tagged ``logged_tag`` and
    answers 413 before reading a body whose declared length is over the limit."""

    def __init__(self, app, metrics: ServiceMetrics, max_body_bytes: int, logged_tag: str):
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes
        self.logged_tag = logged_tag

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        headers = dict(scope["headers"])
        rid = request_id(headers.get(b"x-request-id", b""))
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = [(k, v) for k, v in message.get("headers", [])
                       if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*raw, (b"x-request-id", rid.encode())]}
            await send(message)

        length = headers.get(b"content-length", b"")
        try:
            if length.isdigit() and int(length) > self.max_body_bytes:
                await too_large_response(Request(scope))(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:  # also when the app raised: the outer error handler answers 500
            self._record(scope, state, status, time.perf_counter() - start)

    def _record(self, scope, state: dict, status: int, elapsed: float) -> None:
        route = scope.get("route")
        path = route.path if route is not None else "other"
        model = state.get("model", "")  # the served model a route picked (serve/tiers.py)
        self.metrics.requests.labels(path, str(status), model).inc()
        self.metrics.latency.labels(path, model).observe(elapsed)
        if status >= 400:
            self.metrics.errors.labels(str(status)).inc()
        logged = route is not None and self.logged_tag in (getattr(route, "tags", None) or ())
        if logged and access_log.isEnabledFor(logging.INFO):
            record = {"request_id": state["request_id"], "key_id": state.get("key_id"),
                      "path": path, "status": status, "ms": round(elapsed * 1000, 2),
                      **state.get("summary", {})}
            access_log.info(json.dumps(record))


_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def request_id(sent: bytes) -> str:
    """The client's X-Request-ID when it is a plain token of at most 64 characters (letters,
    digits, ``._:-``), else a new one: an id goes into every log line and response, so it
    may not be 30 KB long or hold newlines and quotes that forge log lines. A new id is 64
    random bits (``random`` reseeds itself in a forked worker): an id names a request, it
    guards nothing, and uuid4's system call was 4% of the event loop's time at c=64."""
    return sent.decode() if _REQUEST_ID.fullmatch(sent) else f"{random.getrandbits(64):016x}"


class BodyLimit:
    """Counts streamed (chunked) body bytes; over the limit the request fails with 413
    instead of being read into memory."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        seen = 0

        async def counting():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        await self.app(scope, counting, send)


class OpenRoutes:
    """Lets ``METHOD /path`` entries of ``OPEN_ENDPOINTS`` (the page: ``GET /``) past the
    key check that wraps ``app`` (``security.RequireKey`` opens a path whatever its method,
    and ``POST /`` is text-embeddings-inference's route, which needs a key)."""

    def __init__(self, app, routes: list[str]):
        self.app, self.routes = app, {r for r in routes if " " in r}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and f'{scope["method"]} {scope["path"]}' in self.routes:
            return await self.app.app(scope, receive, send)  # the app inside the key check
        await self.app(scope, receive, send)
