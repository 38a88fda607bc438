"""``POST /predict`` and ``POST /``: text-embeddings-inference's classification API, and the
Hugging Face Inference API's text-classification task that ``huggingface_hub``'s
``InferenceClient(<url>).text_classification(...)`` posts to a URL's root.

Both are the same contract as ``/api/v1/analyze/batch`` in another shape: the same keys (also
as ``Authorization: Bearer``), text limits, quota, admission and error table. The request:

- ``inputs``: a string, a sequence ``[text]`` or a batch ``[[text], [text], ...]``, as
  text-embeddings-inference reads them (there, ``[a, b]`` and ``[[a, b]]`` are *pairs* of
  texts for cross-encoders: refused here with a 400 that says so, since every polarity model
  reads one text);
- ``raw_scores``: the two logits instead of probabilities (``±log-odds/2``: their softmax is
  the calibrated probabilities);
- ``truncate``: accepted, changes nothing: polarity reads a long text in windows and never
  cuts it; a text over ``MAX_TEXT_CHARS`` or ``MAX_TEXT_TOKENS`` is refused either way;
- ``parameters`` (``top_k``, ``function_to_apply``): the Inference API's. Its presence makes
  the request one of that API's, answered its way: a list of labels per input, also for a
  single string (``[[...]]``), which ``InferenceClient`` expects. Without it the answer is
  text-embeddings-inference's: a list of ``{label, score}`` for a single input, a list of
  those for a batch. Labels come highest score first, both of them unless ``top_k`` is 1.
"""


import math
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictStr,
    model_validator,
)

from polarity.contract import Prediction
from polarity.labels import LABELS, POSITIVE
from polarity.serve.bodies import GuardedRoute
from polarity.serve.deps import KeyId
from polarity.serve.errors import error_responses
from polarity.serve.routes.analyze import TAG as LOGGED
from polarity.serve.routes.analyze import classify
from polarity.serve.schemas import MODEL_FIELD, Model, check_count, check_text, exactly, text_schema
from polarity.serve.settings import Settings
from polarity.serve.tiers import tier_of

TAG = "compatible"


class Parameters(BaseModel):
    """The Hugging Face Inference API's text-classification parameters."""

    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(None, ge=1, description="Only the K most probable labels.")
    function_to_apply: Literal["softmax", "sigmoid", "none"] | None = Field(
        None, description="softmax (the default: the calibrated probabilities), sigmoid of "
        "each logit, or none (the logits).")


Score = dict[str, str | float]


def request_model(max_text_chars: int, max_items: int) -> type[BaseModel]:
    text = text_schema(max_text_chars)
    one = {"type": "array", "items": text, "minItems": 1, "maxItems": 1}
    inputs_schema = {"anyOf": [text, one, {"type": "array", "items": one, "minItems": 1,
                                           "maxItems": max_items}]}

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        inputs: StrictStr | list[StrictStr | list[StrictStr]] = Field(
            description=f"A text, [text], or a batch [[text], ...] of 1 to {max_items}; "
            "pairs of texts are refused.", examples=["I love it", [["I love it"], ["meh"]]],
            json_schema_extra=exactly(inputs_schema))
        truncate: StrictBool = Field(False, description="Accepted; polarity never cuts a "
                                     "text (it reads long ones in windows).")
        raw_scores: StrictBool = Field(False, description="Logits instead of probabilities.")
        parameters: Parameters | None = Field(None, description="Hugging Face Inference API "
                                              "parameters; when present the answer is a list "
                                              "of labels per input.")
        model: Model = MODEL_FIELD
        _texts: list[str] = PrivateAttr()
        _batched: bool = PrivateAttr()

        @model_validator(mode="after")
        def _sequences(self):
            self._texts, self._batched = sequences(self.inputs)
            check_count("inputs", len(self._texts), max_items)
            where = "inputs[{}]" if self._batched else "inputs"
            for i, text in enumerate(self._texts):
                check_text(where.format(i), text, max_text_chars)
            return self

    return PredictRequest


def sequences(inputs: str | list) -> tuple[list[str], bool]:
    """The texts of text-embeddings-inference's ``inputs`` and whether it was a batch."""
    if isinstance(inputs, str):
        return [inputs], False
    if inputs and all(isinstance(x, str) for x in inputs):
        if len(inputs) == 1:
            return list(inputs), False
        raise ValueError(_pair("inputs", inputs))
    texts = []
    for i, item in enumerate(inputs):
        if not isinstance(item, list):
            raise ValueError(f"inputs[{i}] is a string inside a batch: write a batch as "
                             '[["text"], ["text"], ...]')
        if len(item) != 1:
            raise ValueError(_pair(f"inputs[{i}]", item))
        texts.append(item[0])
    return texts, True


def _pair(where: str, item: list) -> str:
    if len(item) == 2:
        return (f"{where} is a pair of texts, which only cross-encoders read: every polarity "
                'model classifies one text; send a string, ["text"] or [["text"], ...]')
    return (f"{where} holds {len(item)} strings: send a string, [\"text\"] or a batch "
            '[["text"], ["text"], ...]')


def logits(pred: Prediction) -> dict[str, float]:
    """Two logits whose softmax is the prediction's probabilities: ``±log-odds/2`` (a
    two-label softmax fixes logits only up to a shared constant; this is the centred one)."""
    p = min(max(pred.scores[POSITIVE], 1e-15), 1 - 1e-15)
    half = math.log(p / (1 - p)) / 2
    return {label: half if label == POSITIVE else -half for label in LABELS}


def labelled(pred: Prediction, raw: bool, function: str | None = None,
             top_k: int | None = None) -> list[Score]:
    """Both labels, highest score first (top_k of them)."""
    if raw or function in ("none", "sigmoid"):
        scores = logits(pred)
        if function == "sigmoid":
            scores = {k: 1 / (1 + math.exp(-v)) for k, v in scores.items()}
    else:
        scores = dict(pred.scores)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    return [{"label": label, "score": score} for label, score in ranked[:top_k]]


def router(settings: Settings) -> APIRouter:
    PredictRequest = request_model(  # noqa: N806 - a class
        settings.max_text_chars, settings.texts_per_request)
    errors = error_responses(400, 401, 404, 413, 429, 500, 503)

    async def predict(body: PredictRequest, request: Request, response: Response,
                      key: KeyId):
        """Classify like text-embeddings-inference's /predict (or, with ``parameters``, like
        the Hugging Face Inference API)."""
        texts, state = body._texts, tier_of(request, body.model)
        preds, _ = await classify(request, response, state, key, texts)
        request.state.summary = {"text_chars": sum(map(len, texts)), "items": len(texts)}
        hf = body.parameters
        out = [labelled(p, body.raw_scores, hf and hf.function_to_apply, hf and hf.top_k)
               for p in preds]
        answer = out if body._batched or hf is not None else out[0]
        return JSONResponse(answer, headers=dict(response.headers))

    r = APIRouter(tags=[TAG, LOGGED], route_class=GuardedRoute)
    shape = {200: {"description": "[{label, score}, ...] for one input; a list of those for "
                   "a batch, or whenever `parameters` is sent."}, **errors}
    r.add_api_route("/predict", predict, methods=["POST"], response_model=None,
                    responses=shape, name="tei-predict")
    r.add_api_route("/", predict, methods=["POST"], response_model=None, responses=shape,
                    name="tei-root", summary="Predict (the root, as TEI and the Hugging Face "
                    "Inference API answer it)")
    return r
