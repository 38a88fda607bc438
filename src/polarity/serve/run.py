"""Start uvicorn for the service: one process, or several workers that rebuild the same
settings from the environment. Every worker configures logging itself (the access log used
to be lost in workers) and runs the guarded HTTP protocol with the connection cap."""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import socket

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from polarity.serve.settings import Settings, to_environ


def logging_config(level: str) -> dict:
    """uvicorn's logging, plus the service's own loggers (``polarity.serve``, the JSON access
    log ``polarity.access``) on stderr; applied in every worker process."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["plain"] = {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    config["handlers"]["polarity"] = {"class": "logging.StreamHandler", "formatter": "plain",
                                      "stream": "ext://sys.stderr"}
    python_level = "DEBUG" if level == "trace" else level.upper()
    config["loggers"]["polarity"] = {"handlers": ["polarity"], "level": python_level,
                                     "propagate": False}
    return config


def server_config(app, settings: Settings, **extra) -> ServiceConfig:
    """The uvicorn configuration every worker runs with."""
    options = dict(host=settings.host, port=settings.port, log_level=settings.log_level,
                   access_log=False, timeout_graceful_shutdown=30,
                   timeout_keep_alive=settings.keep_alive_s,
                   limit_concurrency=settings.max_connections,
                   log_config=logging_config(settings.log_level))
    if importlib.util.find_spec("httptools") is not None:
        from polarity.serve.protocol import GuardedHttpTools

        options["http"] = GuardedHttpTools
    else:  # h11 has a head limit of its own (answered 400), and no body deadline
        options["h11_max_incomplete_event_size"] = settings.max_header_bytes
    config = ServiceConfig(app, **options, **extra)
    config.polarity_limits = (settings.max_header_bytes, settings.header_timeout_s,
                              settings.body_timeout_s)
    return config


def serve(settings: Settings) -> None:
    from polarity.serve.app import create_app

    if settings.threads is None:
        settings.threads = max(1, (os.cpu_count() or 1) // max(1, settings.workers))
    if settings.workers == 1:
        uvicorn.Server(server_config(create_app(settings), settings)).run()
        return
    if not settings.redis_url:
        logging.getLogger("polarity.serve").warning(
            "%d workers without REDIS_URL: each worker counts rate limits on its own, so a "
            "key gets up to %d times RATE_LIMIT", settings.workers, settings.workers)
    os.environ.update(to_environ(settings))
    from polarity.serve.supervisor import Supervisor

    config = server_config("polarity.serve.app:app_from_env", settings, factory=True,
                           workers=settings.workers)
    Supervisor(config, sockets=[config.bind_socket()]).run()


class ServiceConfig(uvicorn.Config):
    """uvicorn's Config with the guarded protocol's limits (``polarity_limits``), and a
    listening socket that gets TCP_NODELAY: uvicorn binds the shared socket of several
    workers with protocol 0, so asyncio never sets TCP_NODELAY on the connections it accepts
    and every keep-alive response waits on Nagle plus delayed ACK (about 40 ms; uvicorn
    issue 3149). The same socket, re-made so that it reports IPPROTO_TCP, gets it."""

    polarity_limits: tuple[int, float, float] | None = None

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP,
                                 fileno=sock.detach())
            sock.set_inheritable(True)
        return sock
