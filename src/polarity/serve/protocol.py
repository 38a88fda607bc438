"""uvicorn's httptools protocol with the limits a public HTTP server needs and uvicorn lacks:
a cap on the bytes of a request's head (431; body bytes that arrive with it do not count), a
deadline for the head to arrive and one for the whole body (408 or a closed connection).

Measured before (docs/service.md, limits and failure modes): one unauthenticated request
with a 64 MB header held the event loop (``/health`` took 4.7 s), and a body shorter than
its Content-Length held a connection for as long as the client liked. The connection count
itself is capped by uvicorn's ``limit_concurrency`` (503).
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: (max header bytes, header timeout s, body idle timeout s) when the config names none.
DEFAULT_LIMITS = (32_768, 10.0, 10.0)
#: How long an idle keep-alive connection stays open once shutdown begins: a request the
#: client sent as the previous answer left is then answered (with ``connection: close``)
#: instead of being met by a reset.
SHUTDOWN_GRACE_S = 0.5


class GuardedHttpTools(HttpToolsProtocol):
    """``uvicorn.Config(http=GuardedHttpTools)``; the limits come from the config's
    ``polarity_limits`` attribute (a module-level class and a plain attribute, so that the
    config pickles into worker processes)."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._limits = getattr(self.config, "polarity_limits", DEFAULT_LIMITS)
        self._head_bytes, self._tail = 0, b""
        self._in_head = True
        self._deadline = None
        self._shutting_down = False
        self._arm(self._limits[1])

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            if self._deadline is None:  # a new request's head begins: it has a deadline
                self._arm(self._limits[1])
            # Only the head counts: a client that writes head and body at once sends body
            # bytes in the same read (a 36 KB batch was refused with 431). The blank line
            # that ends the head may straddle two reads, hence the tail of the last one.
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._tail = window[-3:]
            if self._head_bytes > self._limits[0]:
                self._refuse(431, "Request Header Fields Too Large",
                             f"the request head is over {self._limits[0]} bytes")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        # One deadline for the whole body, not re-armed per chunk: a byte every 9 s used to
        # hold a connection for ever.
        self._arm(self._limits[2])
        super().on_headers_complete()
        if self._shutting_down:  # answer it, then close
            self.cycle.keep_alive = False

    def shutdown(self) -> None:
        # uvicorn closes an idle connection at once; a request already on its way (sent as
        # the last answer left, 2 of 64 connections in tests/serve/test_shutdown.py) then
        # meets a reset. Wait a moment for one.
        self._shutting_down = True
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(SHUTDOWN_GRACE_S, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        idle = (self.cycle is None or self.cycle.response_complete) and not self._head_bytes
        if idle and not self.transport.is_closing():
            self.transport.close()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # The next request on this connection starts a new head; keep-alive's own timer
        # covers the wait for its first byte, this one's deadline starts with it.
        self._in_head, self._head_bytes, self._tail = True, 0, b""
        self._disarm()
        super().on_response_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.cycle is not None and not self._in_head:  # the app is reading the body
            self.transport.close()  # the app's receive() then sees a disconnect
            return
        self._refuse(408, "Request Timeout", "the request did not arrive in time")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        body = message.encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        self.transport.close()
