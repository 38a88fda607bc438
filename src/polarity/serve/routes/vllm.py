"""``POST /classify`` and ``POST /v1/classify``: vLLM's online classification API.

The same contract as ``/api/v1/analyze/batch`` in vLLM's shape: the same keys (also as
``Authorization: Bearer``), text limits, quota, admission and error table. The request takes
``input`` (a string or a list of strings; token ids are refused: polarity reads text),
``model`` (a served model's name: 404 for another one; left out, the default), and vLLM's
other fields: ``use_activation`` (and its older names ``softmax``, ``activation``) false gives
the logits (``±log-odds/2``) in ``probs``; ``user``, ``request_id``, ``priority``,
``add_special_tokens`` and ``truncate_prompt_tokens`` are accepted and change nothing
(polarity never cuts a text; it reads long ones in windows).

The answer: ``id``, ``object: "list"``, ``created``, ``model``, per text ``index``,
``label``, ``probs`` in label-index order (``[NEGATIVE, POSITIVE]``), ``num_classes`` (2), and
``usage`` whose ``prompt_tokens`` are the texts' tokens as the model's tokenizer counts them.
"""


import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
)

from polarity.labels import LABELS
from polarity.serve.bodies import GuardedRoute
from polarity.serve.deps import KeyId, ServiceState
from polarity.serve.errors import error_responses
from polarity.serve.routes.analyze import TAG as LOGGED
from polarity.serve.routes.analyze import classify
from polarity.serve.routes.tei import TAG, logits
from polarity.serve.schemas import check_count, check_text, exactly, text_schema
from polarity.serve.settings import Settings
from polarity.serve.tiers import tier_of


def _integer(value):
    """JSON's integers: an int, or a float without a fraction (JSON Schema's ``integer``
    counts 1.0 as one); never a string or a boolean, as lax validation would take."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected an integer")
    return value


Integer = Annotated[int, BeforeValidator(_integer)]


def request_model(max_text_chars: int, max_items: int) -> type[BaseModel]:
    text = text_schema(max_text_chars)
    input_schema = {"anyOf": [text, {"type": "array", "items": text, "minItems": 1,
                                     "maxItems": max_items}]}

    class ClassifyRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        input: StrictStr | list[StrictStr] = Field(
            description=f"A text or a list of 1 to {max_items} texts.",
            examples=["I love it", ["I love it", "Worst purchase ever"]],
            json_schema_extra=exactly(input_schema))
        model: StrictStr | None = Field(None, description="A served model's name (see "
                                        "/api/v1/models); left out: the default.")
        use_activation: StrictBool | None = Field(None, description="false: logits in "
                                                  "`probs` instead of probabilities.")
        softmax: StrictBool | None = Field(None, description="Older name of use_activation.")
        activation: StrictBool | None = Field(None, description="Older name of "
                                              "use_activation.")
        user: StrictStr | None = None
        request_id: StrictStr | None = None
        priority: Integer = 0
        add_special_tokens: StrictBool = True
        truncate_prompt_tokens: Annotated[Integer, Field(ge=-1)] | None = Field(
            None, description="Accepted; polarity never cuts a text.",
            json_schema_extra=exactly({"anyOf": [{"type": "integer", "minimum": -1},
                                                 {"type": "null"}],
                                       "description": "Accepted; polarity never cuts a "
                                       "text."}))

        @field_validator("input", mode="before")
        @classmethod
        def _text(cls, value):
            if isinstance(value, list) and value and all(
                    isinstance(x, int) or isinstance(x, list) for x in value):
                raise ValueError("input holds token ids: polarity reads text, send a string "
                                 "or a list of strings")
            texts = [value] if isinstance(value, str) else value
            if isinstance(texts, list):
                check_count("input", len(texts), max_items)
                for i, text in enumerate(texts):
                    if isinstance(text, str):
                        where = "input" if isinstance(value, str) else f"input[{i}]"
                        check_text(where, text, max_text_chars)
            return value

        @property
        def activated(self) -> bool:
            chosen = [v for v in (self.use_activation, self.softmax, self.activation)
                      if v is not None]
            return chosen[0] if chosen else True

    return ClassifyRequest


def router(settings: Settings) -> APIRouter:
    ClassifyRequest = request_model(  # noqa: N806 - a class
        settings.max_text_chars, settings.texts_per_request)
    errors = error_responses(400, 401, 404, 413, 429, 500, 503)

    async def classify_route(body: ClassifyRequest, request: Request, response: Response,
                             key: KeyId):
        """Classify like vLLM's /classify."""
        state = tier_of(request, body.model)
        texts = [body.input] if isinstance(body.input, str) else body.input
        preds, _ = await classify(request, response, state, key, texts)
        tokens = await tokens_of(state, texts)
        request.state.summary = {"text_chars": sum(map(len, texts)), "items": len(texts)}
        data = []
        for i, pred in enumerate(preds):
            scores = pred.scores if body.activated else logits(pred)
            data.append({"index": i, "label": pred.label,
                         "probs": [scores[label] for label in LABELS],
                         "num_classes": len(LABELS)})
        rid = body.request_id or request.state.request_id
        return JSONResponse({"id": f"classify-{rid}", "object": "list",
                             "created": int(time.time()), "model": state.name, "data": data,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens,
                                       "completion_tokens": 0,
                                       "prompt_tokens_details": None}},
                            headers=dict(response.headers))

    r = APIRouter(tags=[TAG, LOGGED], route_class=GuardedRoute)
    for path in ("/classify", "/v1/classify"):
        r.add_api_route(path, classify_route, methods=["POST"], response_model=None,
                        responses=errors, name=f"vllm{path.replace('/', '-')}")
    return r


async def tokens_of(state: ServiceState, texts: list[str]) -> int:
    """The texts' tokens as the model counts them (characters for a model that does not)."""
    count = getattr(state.predictor, "work", None)
    return sum(await asyncio.to_thread(count, texts) if count else map(len, texts))
