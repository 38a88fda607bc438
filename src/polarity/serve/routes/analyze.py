"""``/api/v1/analyze`` and ``/api/v1/analyze/batch``.

One request passes these checks once each: the request schema (built from the settings: text
length, texts per request, reasons per request), the work the texts cause once emoji are
read as words (a text over ``MAX_TEXT_TOKENS`` tokens is 413; a text costs one quota unit per
``QUOTA_UNIT_TOKENS`` tokens, at least one), then admission and quota (:mod:`deps`). The
texts then wait in their key's queue (:class:`~polarity.serve.batching.ModelRunner`): keys
take turns on the model, priced by these tokens, so one key's long requests cannot hold
the model while another key's short ones wait.
"""


import asyncio
import logging
import math
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from polarity.contract import Prediction
from polarity.serve.bodies import GuardedRoute
from polarity.serve.deps import KeyId, ServiceState, admitted
from polarity.serve.errors import TooCostly, error_responses
from polarity.serve.schemas import AnalyzeResponse, BatchResponse, request_models
from polarity.serve.settings import Settings
from polarity.serve.tiers import tier_of

TAG = "analyze"
access_log = logging.getLogger("polarity.access")


def router(settings: Settings) -> APIRouter:
    AnalyzeRequest, BatchRequest = request_models(  # noqa: N806 - classes
        settings.max_text_chars, settings.texts_per_request,
        min(settings.max_reasoning_texts, settings.texts_per_request))
    errors = error_responses(400, 401, 404, 413, 429, 500, 503)

    async def analyze(body: AnalyzeRequest, request: Request, response: Response,
                      key: KeyId):
        """Classify one text. Concurrent calls are micro-batched into one model call."""
        start = time.perf_counter()
        state = tier_of(request, body.model)
        pred = (await classify(request, response, state, key, [body.text],
                               body.include_reasoning))[0][0]
        request.state.summary = {"text_chars": len(body.text), "prediction": pred.label,
                                 "confidence": round(pred.confidence, 4), "tier": pred.tier}
        if access_log.isEnabledFor(logging.DEBUG):  # which early exit answered: debug only
            request.state.summary["exit_layer"] = pred.exit_layer
        if state.settings.log_texts:
            request.state.summary["text"] = body.text
        return JSONResponse(result(body.text, pred, time.perf_counter() - start),
                            headers=dict(response.headers))

    async def analyze_batch(body: BatchRequest, request: Request, response: Response,
                            key: KeyId):
        """Classify several texts; each costs at least one rate-limit unit."""
        start = time.perf_counter()
        state = tier_of(request, body.model)
        preds, _ = await classify(request, response, state, key, body.texts,
                                  body.include_reasoning)
        elapsed = time.perf_counter() - start
        request.state.summary = {"text_chars": sum(map(len, body.texts)),
                                 "items": len(body.texts)}
        return JSONResponse({"results": [result(t, p, elapsed) for t, p in
                                         zip(body.texts, preds, strict=True)],
                             "total_processing_time": elapsed}, headers=dict(response.headers))

    r = APIRouter(tags=[TAG], route_class=GuardedRoute)
    r.add_api_route("/api/v1/analyze", analyze, methods=["POST"], response_model=None,
                    responses={200: {"model": AnalyzeResponse}, **errors})
    r.add_api_route("/api/v1/analyze/batch", analyze_batch, methods=["POST"],
                    response_model=None, responses={200: {"model": BatchResponse}, **errors})
    return r


async def classify(request: Request, response: Response, state: ServiceState, key: str,
                   texts: list[str], reasoning: bool = False
                   ) -> tuple[list[Prediction], list[int]]:
    """The one way a route gets predictions, whatever shape its request and answer take:
    the texts' work (413 past ``MAX_TEXT_TOKENS``), admission and quota (:func:`admitted`,
    the tier's units a text), then the model in the key's turns; every answer counted in
    the metrics. Returns the predictions and each text's work."""
    work = await work_of(state, texts)
    if len(texts) == 1:
        run = lambda: _listed(state.one(texts[0], reasoning, key=key, work=work[0]))  # noqa: E731
    else:
        run = lambda: state.many(texts, reasoning, work, key=key)  # noqa: E731
    preds = await admitted(request, state, key, len(texts),
                           units(state.settings, work) * state.cost, response, run)
    state.metrics.queue_depth.set(state.runner.depth)
    for pred in preds:
        state.metrics.observe_prediction(pred.label, pred.confidence)
    return preds, work


async def _listed(one) -> list[Prediction]:
    return [await one]


async def work_of(state: ServiceState, texts: list[str]) -> list[int]:
    """Tokens per text once preprocessed; 413 for a text over ``MAX_TEXT_TOKENS``. An ASCII
    text of at most ``QUOTA_UNIT_TOKENS`` characters is not tokenised: it has at most as many
    tokens as characters and no emoji to expand, so it costs one unit whatever its tokens;
    its work is estimated as a quarter of its characters (English averages about four a
    token), the price the scheduler needs to fill a model call (with characters, a call of
    2,048 "tokens" held 5 reviews instead of 20)."""
    s = state.settings
    if all(t.isascii() and len(t) <= s.quota_unit_tokens for t in texts):
        return [max(1, len(t) // 4) for t in texts]
    count = getattr(state.predictor, "work", None)  # a Predictor need not count its work
    work = await asyncio.to_thread(count, texts) if count else [len(t) for t in texts]
    for i, tokens in enumerate(work):
        if tokens > s.max_text_tokens:
            where = "the text" if len(texts) == 1 else f"texts[{i}]"
            raise TooCostly(f"{where} comes to {tokens:,} tokens once emoji and emoticons are "
                            f"read as words; the limit is {s.max_text_tokens:,} a text "
                            "(MAX_TEXT_TOKENS): send shorter texts")
    return work


def units(settings: Settings, work: list[int]) -> int:
    """Quota units: one a text, and one more per ``QUOTA_UNIT_TOKENS`` tokens beyond."""
    return sum(max(1, math.ceil(w / settings.quota_unit_tokens)) for w in work)


def result(text: str, pred: Prediction, seconds: float) -> dict:
    return {"text": text, **pred.to_json(), "processing_time": seconds}
