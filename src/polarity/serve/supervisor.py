"""The supervisor of several worker processes: uvicorn's, with a shutdown that leaves no
connection unanswered.

uvicorn's supervisor kept its copy of the shared listening socket until every worker had
drained and exited. The kernel went on completing handshakes that no worker would accept,
and reset them when the supervisor exited: 3 requests sent after SIGTERM got no answer at
all (issue 34), 8 of 8 connections opened during the drain in tests/serve/test_shutdown.py.
Closing the socket sooner is not enough: the connections waiting in its accept queue when
the last worker closes are reset as well. So on SIGTERM (or SIGINT) the supervisor
1. makes the socket drop new handshakes (a socket filter that accepts no packet; a client's
   SYN then goes unanswered and is retried, and meets a closed socket: refused, which a
   client and a load balancer know to mean "not sent"),
2. waits until the workers have accepted every connection already queued (at most
   ``DRAIN_S``; each one is then answered, with ``connection: close``),
3. closes its copy and stops the workers, which drain as before.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import sys
import time

from uvicorn.supervisors import Multiprocess

#: Longest wait for the workers to accept the connections already queued.
DRAIN_S = 2.0
SO_ATTACH_FILTER = 26  # Linux; the module has no name for it
#: One classic BPF instruction, ``ret #0``: keep no byte of any packet.
DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)


class Supervisor(Multiprocess):
    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set() or any(s.fileno() == -1 for s in self.sockets):
            return  # stopping: a worker that died is not replaced (it would need the socket)
        super().keep_subprocess_alive()

    def _stop_listening(self) -> None:
        for sock in self.sockets:
            if sock.fileno() != -1 and refuse_new_connections(sock):
                wait_for_empty_queue(sock, DRAIN_S)
        for sock in self.sockets:
            sock.close()


def refuse_new_connections(sock: socket.socket) -> bool:
    """Attaches a drop-everything filter to a listening TCP socket (Linux): no handshake
    completes on it any more. False where that is not possible."""
    if not sys.platform.startswith("linux") or sock.family not in (socket.AF_INET,
                                                                    socket.AF_INET6):
        return False
    program = ctypes.create_string_buffer(DROP_ALL)
    fprog = struct.pack("HL", 1, ctypes.addressof(program))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


def queued_connections(sock: socket.socket) -> int:
    """Connections in a listening socket's accept queue (``tcpi_unacked`` of TCP_INFO)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 24)[0]


def wait_for_empty_queue(sock: socket.socket, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if queued_connections(sock) == 0:
                return
        except OSError:
            return
        time.sleep(0.01)
