"""Start uvicorn for the service: one process, or several workers that rebuild the same
settings from the environment."""

from __future__ import annotations

import logging
import os
import socket

import uvicorn

from polarity.serve.settings import Settings, to_environ


def serve(settings: Settings) -> None:
    from polarity.serve.app import create_app

    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.threads is None:
        settings.threads = max(1, (os.cpu_count() or 1) // max(1, settings.workers))
    common = dict(host=settings.host, port=settings.port, log_level=settings.log_level,
                  access_log=False, timeout_graceful_shutdown=30)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    os.environ.update(to_environ(settings))
    from uvicorn.supervisors import Multiprocess

    config = TcpConfig("polarity.serve.app:app_from_env", factory=True,
                       workers=settings.workers, **common)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


class TcpConfig(uvicorn.Config):
    """uvicorn binds the shared listening socket with protocol 0, so asyncio never sets
    TCP_NODELAY on the connections it accepts and every keep-alive response waits on Nagle
    plus delayed ACK (about 40 ms; uvicorn issue 3149). The same socket, re-made so that it
    reports IPPROTO_TCP, gets TCP_NODELAY on every accepted connection."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP,
                                 fileno=sock.detach())
            sock.set_inheritable(True)
        return sock
