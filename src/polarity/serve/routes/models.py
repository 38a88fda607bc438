"""``/api/v1/models``: the served models (``polarity serve --model A --model B``), the default
first, each with its version, its card's summary and its price in quota units."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from polarity.serve.schemas import ModelsResponse
from polarity.serve.settings import Settings
from polarity.serve.tiers import describe


def router(settings: Settings) -> APIRouter:
    r = APIRouter(tags=["ops"])
    r.add_api_route("/api/v1/models", models, methods=["GET"], response_model=None,
                    responses={200: {"model": ModelsResponse}})
    return r


async def models(request: Request):
    """The served models; a request names one in ``model``."""
    tiers = request.app.state.tiers
    return JSONResponse({"object": "list",
                         "data": [describe(t, t is tiers.default) for t in tiers]})
