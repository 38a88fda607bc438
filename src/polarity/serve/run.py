"""Start uvicorn for the service: one process, or several workers that rebuild the same
settings from the environment."""

from __future__ import annotations

import logging
import os

from polarity.serve.settings import Settings, to_environ


def serve(settings: Settings) -> None:
    import uvicorn

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
    uvicorn.run("polarity.serve.app:app_from_env", factory=True, workers=settings.workers,
                **common)
