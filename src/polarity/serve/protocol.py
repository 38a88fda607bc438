"""uvicorn's httptools protocol with the limits a public HTTP server needs and uvicorn lacks:
a cap on the bytes of a request that are not body (431), a deadline for the head to arrive
and one for the whole body (408 or a closed connection).

Measured before (docs/service.md, limits and failure modes): one unauthenticated request
with a 64 MB header held the event loop (``/health`` took 4.7 s), and a body shorter than
its Content-Length held a connection for as long as the client liked. Issue 34: the cap
counted only a connection's first head, so 1 GB of chunked trailer lines (+965 MB of worker
memory) or a pipelined head of 1 GB after a slow request (1.9 GB) were read in whole. Now
every line of a request outside its body (request line, headers, trailers) counts against
one ``MAX_HEADER_BYTES``, per request, pipelined or not.
"""

from __future__ import annotations

import fcntl
import struct
import termios
import time

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from polarity.serve.connections import IdleConnections

#: (max header bytes, header timeout s, body idle timeout s) when the config names none.
DEFAULT_LIMITS = (32_768, 10.0, 10.0)
#: How long an idle keep-alive connection stays open once shutdown begins: a request the
#: client sent as the previous answer left is then answered (with ``connection: close``)
#: instead of being met by a reset.
SHUTDOWN_GRACE_S = 0.5
#: Longest a refused connection stays half-open (reads paused) for its answers to reach a
#: client that is not reading; one that reads has them within milliseconds.
LINGER_S = 1.0
#: Bytes of a request line besides its URL: method, spaces, version, CRLF, and the blank
#: line that ends the head (an estimate on the safe side; the URL is counted exactly).
REQUEST_LINE_BYTES = 24

# What the parser is reading at the end of a read: lines (a head, or a chunked body's
# trailers) are counted, a body is not.
IDLE, HEAD, BODY, TRAILERS = "idle", "head", "body", "trailers"


class TooLarge(Exception):
    """Raised from a parser callback: llhttp stops at once, so not one more header is kept."""


class GuardedHttpTools(HttpToolsProtocol):
    """``uvicorn.Config(http=GuardedHttpTools)``; the limits come from the config's
    ``polarity_limits`` attribute (a module-level class and a plain attribute, so that the
    config pickles into worker processes)."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._limits = getattr(self.config, "polarity_limits", DEFAULT_LIMITS)
        # _head_bytes: the current request's completed lines; _line: the line in progress
        # (llhttp hands httptools a partial line per read, which it keeps until the line
        # ends), both counted against one limit.
        self._head_bytes, self._line, self._state = 0, 0, IDLE
        self._body_in_read = 0
        self._refusal: tuple[int, str, str] | None = None
        self._refused_cycle = None
        self._deadline = None
        self._shutting_down = False
        self._arm(self._limits[1])  # a connection that never sends a head gets 408
        self._idle = IdleConnections.of(self.server_state)
        self._idle.idle(self)

    def connection_lost(self, exc) -> None:
        self._disarm()
        self._idle.busy(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # reading is paused; what was already read is dropped
        self._unset_keepalive_if_required()
        self._body_in_read = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is None:  # not ours (TooLarge): uvicorn's 400
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        self._count_line_in_progress(data)

    def _count_line_in_progress(self, data: bytes) -> None:
        """After a read: the bytes of the line the parser is inside, if it is a line."""
        if self._state == BODY:
            self._line = 0
            return
        if self._body_in_read:
            # The read ended a body: its last line may hold body bytes, so it is left to the
            # callbacks, which count it whole once it ends (at most one read uncounted).
            self._line = 0
        else:
            newline = data.rfind(b"\n")
            self._line = self._line + len(data) if newline < 0 else len(data) - newline - 1
        if self._head_bytes + self._line > self._limits[0]:
            self._refuse(431, "Request Header Fields Too Large", self._too_large())

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes, self._state = 0, HEAD
        self._arm(self._limits[1])  # a new request's head has a deadline

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_bytes > self._limits[0]:
            self._stop(self._too_large())
        if self._state == HEAD:
            super().on_header(name, value)
        # Trailers are counted and dropped: ASGI has no place for them, and uvicorn would
        # append them to the headers of a request its app is already running.

    def on_headers_complete(self) -> None:
        self._head_bytes += len(self.url) + REQUEST_LINE_BYTES
        if self._head_bytes > self._limits[0]:
            self._stop(self._too_large())
        self._state = BODY
        self._disarm()  # the body's own deadline starts with its app (_start_asgi_task)
        self._idle.busy(self)
        if self.limit_concurrency is not None:  # at the cap, the longest idle one goes
            self._idle.make_room(self.connections, self.limit_concurrency)
        super().on_headers_complete()
        if self._shutting_down:  # answer it, then close
            self.cycle.keep_alive = False

    def _start_asgi_task(self, cycle, app) -> None:
        # One deadline for the whole body, not re-armed per chunk: a byte every 9 s used to
        # hold a connection for ever. A pipelined request's starts when its turn comes (its
        # body is not read before), not while the request before it runs.
        if cycle.more_body and self._refusal is None:
            self._arm(self._limits[2])
        super()._start_asgi_task(cycle, app)

    def on_body(self, body: bytes) -> None:
        self._body_in_read += len(body)
        self._state = BODY
        super().on_body(body)

    def on_chunk_header(self) -> None:
        # Either a chunk's data follows (on_body sets BODY) or, after the last chunk, the
        # trailers: lines, counted as the head's were.
        self._state = TRAILERS

    def on_chunk_complete(self) -> None:
        self._state = BODY

    def on_message_complete(self) -> None:
        self._disarm()
        self._head_bytes, self._line, self._state = 0, 0, IDLE
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if self._refusal is not None:
            if self.pipeline and self.pipeline[-1][0] is not self._refused_cycle:
                super().on_response_complete()  # requests before the refused one first
            else:
                self.server_state.total_requests += 1
                self._answer_refusal()
            return
        # The next request on this connection starts a new head; keep-alive's own timer
        # covers the wait for its first byte, this one's deadline starts with it.
        self._disarm()
        if not self.pipeline:
            self._idle.idle(self)
        super().on_response_complete()

    def evict(self) -> None:
        """Closed to make room at the connection cap (serve/connections.py): a head in
        progress gets 503, an idle connection is closed as keep-alive's timer would."""
        if self._state == HEAD:
            self._refuse(503, "Service Unavailable", "the server is at its connection cap "
                         "and this connection was the longest idle: retry")
        elif not self.transport.is_closing():
            self.transport.close()

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
        idle = (self.cycle is None or self.cycle.response_complete) and self._state == IDLE
        if idle and not self.transport.is_closing():
            self.transport.close()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._state == BODY and self.cycle is not None:  # the app is reading the body
            self.transport.close()  # the app's receive() then sees a disconnect
            return
        self._refuse(408, "Request Timeout", "the request did not arrive in time")

    def _too_large(self) -> str:
        return (f"the request's head and trailers are over {self._limits[0]} bytes "
                "(MAX_HEADER_BYTES)")

    def _stop(self, message: str) -> None:
        self._refuse(431, "Request Header Fields Too Large", message)
        raise TooLarge(message)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """Stop reading this connection and answer ``status`` once every request before the
        refused one has its answer (responses go out in request order), then close."""
        self._disarm()
        if self._refusal is not None:
            return
        self._refusal = (status, reason, message)
        self._refused_cycle = self.cycle if self._state in (BODY, TRAILERS) else None
        self.flow.pause_reading()
        # uvicorn resumes reading when the app awaits the body or an answer ends: not here.
        self.flow.resume_reading = lambda: None
        # A request waits in the pipeline only behind one still being answered.
        waiting = bool(self.pipeline)
        earlier = self.cycle is not None and self.cycle is not self._refused_cycle
        if not waiting and not (earlier and not self.cycle.response_complete):
            self._answer_refusal()

    def _answer_refusal(self) -> None:
        if self.transport.is_closing():
            return
        answered = self._refused_cycle is not None and self._refused_cycle.response_started
        if not answered:  # the refused request's app already answered it: just close
            status, reason, message = self._refusal
            body = message.encode()
            self.transport.write(
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        # Closing a socket with unread bytes sends a reset, and the kernel drops what it has
        # not sent yet: the answers owed before the refusal could be lost. End the sending
        # side, and close once the client has all of it (at most LINGER_S).
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._close_when_sent(time.monotonic() + LINGER_S)

    def _close_when_sent(self, deadline: float) -> None:
        if not unsent(self.transport) or time.monotonic() >= deadline:
            self.transport.close()
        else:
            self.loop.call_later(0.01, self._close_when_sent, deadline)


def unsent(transport) -> int:
    """Bytes written to ``transport`` that the peer has not acknowledged: asyncio's buffer
    and the kernel's send queue (SIOCOUTQ, Linux)."""
    size = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    try:
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        size += struct.unpack("i", queued)[0]
    except (AttributeError, OSError, ValueError):
        pass
    return size
