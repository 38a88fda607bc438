"""Request and response bodies of the HTTP API (the OpenAPI schema comes from these)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

from polarity.contract import NOT_BLANK, is_blank

Label = Literal["POSITIVE", "NEGATIVE"]


#: The served model a request picks (``polarity serve --model A --model B``).
Model = StrictStr | None
MODEL_FIELD = Field(None, description="Which served model answers (GET /api/v1/models lists "
                    "them); left out, the default (the first).", examples=[None])


def request_models(max_text_chars: int, max_batch_items: int, max_reasoning_texts: int
                   ) -> tuple[type[BaseModel], type[BaseModel]]:
    """``AnalyzeRequest`` and ``BatchRequest`` with this server's limits in their schema,
    so that the OpenAPI document says what the service accepts: text length, texts per
    request, and texts per request with reasons (``if include_reasoning then maxItems``)."""
    Text = Annotated[StrictStr, Field(min_length=1, max_length=max_text_chars,
                                      pattern=NOT_BLANK)]
    Reasoning = StrictBool if max_reasoning_texts else Literal[False]
    about = ("Explain the prediction (costs extra model passes; docs/service.md)"
             + ("." if max_reasoning_texts else "; reasons are off on this server."))

    class AnalyzeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        text: Text = Field(description="Text to classify; not empty or only whitespace, at "
                           f"most {max_text_chars} characters.", examples=["I love it"])
        include_reasoning: Reasoning = Field(False, description=about)
        model: Model = MODEL_FIELD

    reasons_cap = {"if": {"properties": {"include_reasoning": {"const": True}},
                          "required": ["include_reasoning"]},
                   "then": {"properties": {"texts": {"maxItems": max_reasoning_texts}}}}

    class BatchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra=reasons_cap
                                  if max_reasoning_texts else None)

        texts: list[Text] = Field(description=f"Texts to classify, in order: 1 to "
                                  f"{max_batch_items}, at most {max_reasoning_texts} with "
                                  "reasons.", min_length=1, max_length=max_batch_items,
                                  examples=[["I love it", "Worst purchase ever"]])
        include_reasoning: Reasoning = Field(False, description=about)
        model: Model = MODEL_FIELD

        @model_validator(mode="after")
        def _reasons_cap(self):
            if self.include_reasoning and len(self.texts) > max_reasoning_texts:
                raise ValueError(f"reasons were asked for {len(self.texts)} texts; the limit "
                                 f"is {max_reasoning_texts} per request (MAX_REASONING_TEXTS), "
                                 "as each costs up to 48 model passes: split the batch or "
                                 "leave include_reasoning off")
            return self

    return AnalyzeRequest, BatchRequest


def check_text(where: str, text: str, max_text_chars: int) -> str:
    """The request schema's rule for one text (not blank, at most ``MAX_TEXT_CHARS``), for
    request shapes whose texts are not in a typed field of their own (the compatible
    endpoints' ``inputs``/``input``): raises ``ValueError`` with the same messages."""
    if is_blank(text):
        raise ValueError(f"{where} is empty or only whitespace, control or zero-width "
                         "characters: send some text")
    if len(text) > max_text_chars:
        raise ValueError(f"{where} is longer than {max_text_chars} characters "
                         "(MAX_TEXT_CHARS): send a shorter text")
    return text


def text_schema(max_text_chars: int) -> dict:
    """The JSON schema of one text, as ``request_models`` declares it."""
    return {"type": "string", "minLength": 1, "maxLength": max_text_chars,
            "pattern": NOT_BLANK}


def exactly(schema: dict):
    """A ``json_schema_extra`` that replaces a field's generated schema with ``schema``: for
    fields parsed leniently and checked by a validator, so that the OpenAPI document says
    precisely what is accepted (the fuzz test holds the server to it)."""
    def replace(generated: dict) -> None:
        generated.clear()
        generated.update(schema)
    return replace


def check_count(where: str, n: int, most: int) -> None:
    if n == 0:
        raise ValueError(f"{where} is empty: send at least one text")
    if n > most:
        raise ValueError(f"{where} has too many items: send at most {most} per request "
                         "(split the batch)")


class Scores(BaseModel):
    POSITIVE: float
    NEGATIVE: float


class AnalyzeResponse(BaseModel):
    text: str
    predicted_sentiment: Label
    confidence: float = Field(ge=0.5, le=1.0, description="Probability of the predicted label.")
    scores: Scores
    reasoning: str | None = Field(description="Why, when asked for; null otherwise.")
    windows: int = Field(1, ge=1, description="Windows of the model's token limit the text "
                         "was read in: more than 1 for a text longer than one window.")
    tier: str | None = Field(None, description="Which tier answered: fast (the encoder), "
                             "accurate (the causal LM), baseline (VADER).")
    escalation: Literal["not_needed", "escalated", "queue_full", "rate_capped"] | None = Field(
        None, description="Cascades only: not_needed (the fast tier was sure), escalated (the "
        "accurate tier answered), or why a text that should have gone on kept the fast "
        "answer (queue_full, rate_capped); null for other models.")
    processing_time: float = Field(description="Seconds spent on this text's request.")


class BatchResponse(BaseModel):
    results: list[AnalyzeResponse]
    total_processing_time: float


class ModelDescription(BaseModel):
    name: str
    backend: str
    version: str


class ServedModel(BaseModel):
    name: str = Field(description="What a request sends in `model` to pick it.")
    default: bool = Field(description="Answers requests that name no model.")
    loaded: bool
    units_per_text: int = Field(description="Quota units a text costs, per QUOTA_UNIT_TOKENS "
                                "tokens: the backend's cost against the fast tier's.")
    model: str | None = Field(None, description="The model card's name.")
    version: str | None = None
    backend: str | None = Field(None, description="The runtime that runs it.")
    tier: str | None = Field(None, description="fast, accurate, baseline or cascade.")
    dtype: str | None = None
    card: dict | None = Field(None, description="The model card's summary: backend, base "
                              "model, token window, labels, measured accuracies.")


class ModelsResponse(BaseModel):
    object: Literal["list"]
    data: list[ServedModel]


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "degraded"] = Field(
        description="ok: ready; loading: no model yet; degraded: the rate limiter's storage "
        "does not answer.")
    checks: dict[str, bool] = Field(description="Each readiness check: model, rate_limiter.")
    model_loaded: bool
    gpu_available: bool | None = Field(None, description="With a valid key only.")
    memory_usage: dict[str, float] | None = Field(None, description="With a valid key only.")
    uptime: float | None = Field(None, description="With a valid key only.")
    pid: int | None = Field(None, description="Worker process id: which worker answered. "
                            "With a valid key only.")
    model: ModelDescription | None = Field(None, description="With a valid key only.")
    models: list[ServedModel] | None = Field(None, description="Every served model, the "
                                             "default first. With a valid key only.")


class LiveResponse(BaseModel):
    status: Literal["alive"]
    pid: int | None = Field(None, description="With a valid key only.")
    uptime: float | None = Field(None, description="With a valid key only.")


class ErrorBody(BaseModel):
    code: int
    type: str
    message: str = Field(description="What went wrong and how to fix it.")
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorBody
