"""The connections of one server that are answering nothing, oldest idle first: at the
connection cap (MAX_CONNECTIONS, uvicorn's ``limit_concurrency``) a request closes the one
idle the longest instead of getting 503.

Measured before (issue 34): 2,100 connections opened without a key and left idle made every
request, liveness included, 503 until the header deadline closed them 10 s later, and the
attack could be repeated at once. A keep-alive connection is the server's to close (HTTP
clients reopen one they find closed), so a request that can be served takes its place.
"""

from __future__ import annotations

from typing import Protocol


class Evictable(Protocol):
    def evict(self) -> None: ...


class IdleConnections:
    """An insertion-ordered set: a connection is re-inserted each time it becomes idle."""

    def __init__(self) -> None:
        self._order: dict[Evictable, None] = {}

    @classmethod
    def of(cls, server_state) -> IdleConnections:
        """The one registry of a uvicorn server (its ``ServerState`` is shared by all of
        that server's connections, one per worker process)."""
        registry = getattr(server_state, "polarity_idle", None)
        if registry is None:
            registry = server_state.polarity_idle = cls()
        return registry

    def idle(self, connection: Evictable) -> None:
        self._order.pop(connection, None)
        self._order[connection] = None

    def busy(self, connection: Evictable) -> None:
        self._order.pop(connection, None)

    def make_room(self, connections: set, cap: int) -> int:
        """Closes idle connections, oldest first, until fewer than ``cap`` are open (the
        count uvicorn compares with its limit); returns how many it closed."""
        closed = 0
        while len(connections) >= cap and self._order:
            oldest = next(iter(self._order))
            del self._order[oldest]
            connections.discard(oldest)  # counted out now; connection_lost comes later
            oldest.evict()
            closed += 1
        return closed

    def __len__(self) -> int:
        return len(self._order)
