"""``GET /``: a page to try the service in a browser, with its script and style beside it
(``/page.js``, ``/page.css``). Everything it needs is in the package
(``polarity/resources/page``): no CDN, no framework, nothing fetched from elsewhere, and a
Content-Security-Policy that allows nothing else (no inline script, no other origin). The
page calls ``/api/v1/health`` for the model list and ``/api/v1/analyze/batch`` with the key
typed into it, so it shows exactly what any client gets. ``GET /``, ``/page.js`` and
``/page.css`` need no key (``OPEN_ENDPOINTS``); ``POST /`` is text-embeddings-inference's
route (:mod:`tei`) and does."""

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from polarity.serve.settings import Settings

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
FILES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/page.js": ("page.js", "text/javascript; charset=utf-8"),
         "/page.css": ("page.css", "text/css; charset=utf-8")}


@cache
def _read(name: str) -> bytes:
    return (resources.files("polarity") / "resources" / "page" / name).read_bytes()


def router(settings: Settings) -> APIRouter:
    r = APIRouter(tags=["page"])
    for path, (name, media_type) in FILES.items():
        r.add_api_route(path, _serve(name, media_type), methods=["GET"],
                        response_class=Response, name=f"page-{name}",
                        include_in_schema=path == "/",
                        responses={200: {"content": {media_type.split(";")[0]: {}}}})
    return r


def _serve(name: str, media_type: str):
    async def page() -> Response:
        """The try-it page."""
        return Response(_read(name), media_type=media_type, headers=HEADERS)
    return page
