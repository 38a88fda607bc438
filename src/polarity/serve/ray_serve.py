"""``polarity serve --engine ray``: the same FastAPI app (auth, rate limits, metrics, lifespan
model loading) as a Ray Serve deployment with N replicas behind Ray's HTTP proxy.

Each replica builds the app from the settings and loads its own model in the app's lifespan,
exactly as a uvicorn worker does. Rate limits are per replica unless ``REDIS_URL`` points all
of them at one Redis, so set it whenever there is more than one replica.
"""

from __future__ import annotations

import logging
import signal
import threading

from polarity.serve.settings import Settings

log = logging.getLogger("polarity.serve")
APP_NAME = "polarity"


def deploy(settings: Settings, replicas: int, address: str | None = None) -> None:
    """Start (or join) Ray, start Serve's proxy on host:port and deploy the app; returns once
    the deployment is up."""
    from ray import serve

    from polarity.ray_cluster import connect

    if replicas < 1:
        from polarity.errors import InputError

        raise InputError("--replicas must be at least 1")
    settings.refuse_unshared_limits(replicas, "replicas")
    if replicas > 1 and not settings.redis_url:
        log.warning("%d replicas without REDIS_URL: each replica counts rate limits on its "
                    "own, so a key gets %d times its limit", replicas, replicas)
    connect(address)
    threads = settings.threads or 1

    def build_app():
        from polarity.serve.app import create_app

        return create_app(settings)

    @serve.deployment(name=APP_NAME, num_replicas=replicas,
                      ray_actor_options={"num_cpus": threads},
                      health_check_period_s=5)
    @serve.ingress(build_app)
    class Polarity:
        pass

    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(Polarity.bind(), name=APP_NAME, route_prefix="/", blocking=False)


def shutdown() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def serve_on_ray(settings: Settings, replicas: int, address: str | None = None) -> None:
    """Deploy and block until SIGINT or SIGTERM, then take the deployment down."""
    deploy(settings, replicas, address)
    # After deploy: ray.init sets SIGTERM to sys.exit, which skipped the shutdown below and
    # left Serve's actors to die mid-request, printing their stack dumps.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("serving on http://%s:%d with %d Ray Serve replicas", settings.host,
             settings.port, replicas)
    stop.wait()
    shutdown()
