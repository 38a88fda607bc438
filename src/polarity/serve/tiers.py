"""Several models behind one service: ``polarity serve --model default --model accurate``.

Each served model (a tier) is a :class:`~polarity.serve.deps.ServiceState` of its own: its
own admission count (``MAX_QUEUE`` each), model runner (its queue, fair between keys, and
its model thread) and, for a cascade, its escalation lane, so a slow tier never delays a
fast one. They share the settings, the keys
and the rate limiter: a key has one quota, and a text costs its tier's units
(:attr:`polarity.registry.Backend.cost` per ``QUOTA_UNIT_TOKENS`` tokens). A request picks a
tier with ``model``; left out, the first one answers. A cascade is one tier among them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping

from fastapi import Request

from polarity.backends.cascade import CascadeBackend
from polarity.drift import DriftWatch
from polarity.predictor import Predictor, load_classifier
from polarity.registry import BACKENDS
from polarity.serve.batching import Admission, ModelRunner
from polarity.serve.deps import ServiceState
from polarity.serve.errors import ModelNotReady, UnknownModel
from polarity.serve.escalation import Escalation
from polarity.serve.metrics import ServiceMetrics
from polarity.serve.ratelimit import RateLimiter
from polarity.serve.settings import Settings

log = logging.getLogger("polarity.serve")


class Tiers:
    """The served models by name, the default first."""

    def __init__(self, states: list[ServiceState]):
        self.states = {s.name: s for s in states}
        self.default = states[0]

    @classmethod
    def build(cls, settings: Settings, metrics: ServiceMetrics, limiter: RateLimiter) -> Tiers:
        return cls([ServiceState(settings, metrics.tier(name), limiter,
                                 Admission(settings.max_queue), name=name, target=target)
                    for name, target in settings.served])

    def __iter__(self) -> Iterator[ServiceState]:
        return iter(self.states.values())

    def pick(self, name: str | None) -> ServiceState:
        """The tier ``name`` (the default for None), loaded: 404 for a name not served,
        503 while it loads."""
        state = self.default if name is None else self.states.get(name)
        if state is None:
            raise UnknownModel(f"model {name!r} is not served here: send one of "
                               f"{', '.join(map(repr, self.states))} or leave model out for "
                               f"{self.default.name!r} (GET /api/v1/models lists them)")
        if state.predictor is None:
            raise ModelNotReady(f"model {state.name!r} is still loading; retry shortly",
                                {"Retry-After": "2"})
        return state

    async def load(self, given: Predictor | Mapping[str, Predictor] | None) -> None:
        """Load every tier, in order (``given``: already loaded models, for tests: one for
        the default tier or one per name)."""
        for state in self:
            if isinstance(given, Mapping):
                predictor = given.get(state.name)
            else:
                predictor = given if state is self.default else None
            await load_tier(state, predictor)

    async def close(self) -> None:
        for state in self:
            if state.runner:
                await state.runner.drain()  # finish queued requests before the process exits
            if state.escalation:
                await state.escalation.close()
            if state.runner:
                state.runner.close()


def tier_of(request: Request, name: str | None) -> ServiceState:
    """The tier a request names (:meth:`Tiers.pick`); the request's metrics carry its name."""
    state = request.app.state.tiers.pick(name)
    request.state.model = state.name
    return state


async def load_tier(state: ServiceState, predictor: Predictor | None) -> None:
    s = state.settings
    if predictor is None:
        log.info("loading model %s as %r", state.target, state.name)
        predictor = await asyncio.to_thread(load_classifier, state.target, s.load_options())
    state.metrics.drift = DriftWatch(predictor.info.reference)
    card = getattr(predictor, "card", None)
    state.cost = BACKENDS[card.backend].cost if card is not None else 1
    first = predictor
    cascade = getattr(predictor, "backend", None)
    if isinstance(cascade, CascadeBackend):  # the accurate stage gets a lane of its own
        first = cascade.first
        state.escalation = Escalation(cascade, s.batch_size, s.max_escalation_queue,
                                      s.max_escalations_per_s, state.metrics)
    state.runner = ModelRunner(first.predict, s.batch_size, s.slice_tokens, s.max_wait_ms,
                               on_batch=state.metrics.batch_size.observe)
    state.predictor = predictor
    log.info("model %r loaded (%s, %s, %s, %d unit(s) a text)", state.name,
             predictor.info.name, predictor.info.backend, predictor.info.dtype, state.cost)


def describe(state: ServiceState, default: bool) -> dict:
    """A served model as /api/v1/models and /api/v1/health list it: name, what it is, its
    version, its card's summary and its price in quota units."""
    p = state.predictor
    out = {"name": state.name, "loaded": p is not None, "default": default,
           "units_per_text": state.cost}
    if p is None:
        return out
    card = getattr(p, "card", None)
    out.update({"model": p.info.name, "version": p.info.version, "backend": p.info.backend,
                "tier": getattr(p, "tier", None), "dtype": p.info.dtype})
    if card is not None:
        out["card"] = {"backend": card.backend, "base_model": card.base_model,
                       "max_length": card.max_length, "labels": list(card.labels),
                       "accuracy": _accuracies(card.metrics)}
    return out


def _accuracies(metrics: dict) -> dict[str, float]:
    """The card's measured accuracies by data set (``validation``, ``sst2_dev`` ...)."""
    return {name: value["accuracy"] for name, value in metrics.items()
            if isinstance(value, dict) and isinstance(value.get("accuracy"), int | float)}
