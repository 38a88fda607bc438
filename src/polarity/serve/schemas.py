"""Request and response bodies of the HTTP API (the OpenAPI schema comes from these)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from polarity.contract import NOT_BLANK

Label = Literal["POSITIVE", "NEGATIVE"]


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(description="Text to classify; not empty or only whitespace.",
                            min_length=1, pattern=NOT_BLANK, examples=["I love it"])
    include_reasoning: StrictBool = Field(False, description="Explain the prediction (costs "
                                          "extra model passes; docs/service.md).")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[Annotated[StrictStr, Field(min_length=1, pattern=NOT_BLANK)]] = Field(
        description="Texts to classify, in order.", min_length=1,
        examples=[["I love it", "Worst purchase ever"]])
    include_reasoning: StrictBool = Field(False, description="Explain each prediction.")


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
    processing_time: float = Field(description="Seconds spent on this text's request.")


class BatchResponse(BaseModel):
    results: list[AnalyzeResponse]
    total_processing_time: float


class ModelDescription(BaseModel):
    name: str
    backend: str
    version: str


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "degraded"] = Field(
        description="ok: ready; loading: no model yet; degraded: the rate limiter's storage "
        "does not answer.")
    checks: dict[str, bool] = Field(description="Each readiness check: model, rate_limiter.")
    model_loaded: bool
    gpu_available: bool
    memory_usage: dict[str, float]
    uptime: float
    pid: int = Field(description="Worker process id: which worker answered.")
    model: ModelDescription | None


class ErrorBody(BaseModel):
    code: int
    type: str
    message: str = Field(description="What went wrong and how to fix it.")
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorBody
