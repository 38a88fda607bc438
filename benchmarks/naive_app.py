"""The naive baseline of serve_load.py: a plain FastAPI endpoint that calls a transformers
model in fp32 once per request, the way most tutorials serve a classifier.

    python benchmarks/naive_app.py PORT [MODEL]
"""

from __future__ import annotations

import sys

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from polarity.backends.base_models import resolve_base
from polarity.backends.encoder import load_encoder_model, load_tokenizer
from polarity.modelcard import read_card
from polarity.predictor import resolve_model


class Request(BaseModel):
    text: str


def build(model_name: str) -> FastAPI:
    folder = resolve_model(model_name)
    card = read_card(folder)
    model = load_encoder_model(folder, card)  # the same weights, plain PyTorch fp32
    tokenizer = load_tokenizer(resolve_base(card.base_model, folder))
    app = FastAPI()

    @app.get("/api/v1/health")
    def health():
        return {"status": "ok"}

    @app.post("/api/v1/analyze")
    def analyze(request: Request):
        inputs = tokenizer(request.text, return_tensors="pt", truncation=True, max_length=128)
        with torch.no_grad():
            logits = model(inputs["input_ids"], inputs["attention_mask"])
        probs = torch.softmax(logits, dim=-1)[0]
        label = "POSITIVE" if probs[1] > probs[0] else "NEGATIVE"
        return {"text": request.text, "predicted_sentiment": label,
                "confidence": float(probs.max())}

    return app


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[2] if len(sys.argv) > 2 else "default"), host="127.0.0.1",
                port=int(sys.argv[1]), log_level="warning")
