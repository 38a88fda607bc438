"""Joining a Ray cluster, or starting a local one: for ``polarity batch --engine ray`` and
``polarity serve --engine ray`` alike."""

from __future__ import annotations


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join ``address`` or start a local Ray; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return True
