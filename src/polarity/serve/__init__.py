"""The HTTP service: FastAPI app factory, settings, security, rate limits, micro-batching."""
