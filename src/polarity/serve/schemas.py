"""Request and response bodies of the HTTP API (the OpenAPI schema comes from these)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

Label = Literal["POSITIVE", "NEGATIVE"]
# At least one character that Python's str.strip() keeps. Spelled out because "\S" differs
# between regex engines (pydantic's, hypothesis's, a client's) on \x1c-\x1f, \x85, U+3000...
NOT_BLANK = (r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
             r"\u3000]")


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(description="Text to classify; not empty or only whitespace.",
                            min_length=1, pattern=NOT_BLANK, examples=["I love it"])
    include_reasoning: StrictBool = Field(True, description="Explain the prediction.")


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
    processing_time: float = Field(description="Seconds spent on this text's request.")


class BatchResponse(BaseModel):
    results: list[AnalyzeResponse]
    total_processing_time: float


class ModelDescription(BaseModel):
    name: str
    backend: str
    version: str


class HealthResponse(BaseModel):
    status: Literal["ok", "loading"]
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
