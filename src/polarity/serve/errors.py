"""Error responses: one JSON shape for every failure, with a request id and no internals,
and one table from the service's domain errors to HTTP status codes (``STATUS``)."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from polarity.contract import text_problem
from polarity.errors import InputError
from polarity.serve.schemas import ErrorResponse

log = logging.getLogger("polarity.serve")


class ServiceError(Exception):
    """A failure the client is told about: its message says what to do; ``headers`` (such as
    Retry-After) go with the response. The status code comes from ``STATUS``."""

    def __init__(self, message: str, headers: dict | None = None):
        super().__init__(message)
        self.headers = headers


class Unauthorized(ServiceError):
    """No X-API-Key, or one that is not known."""


class UnknownModel(ServiceError):
    """The request names a model (``model``) this service does not serve."""


class TooCostly(ServiceError):
    """The request asks for more work than one request may: a text longer than
    MAX_TEXT_TOKENS tokens once emoji are read as words, or more quota units than the key's
    whole rate limit."""


class RateLimited(ServiceError):
    """The key has spent its limit for now."""


class ModelNotReady(ServiceError):
    """The model is not loaded (yet)."""


class Overloaded(ServiceError):
    """Too many texts are waiting for the model."""


class LimiterUnavailable(ServiceError):
    """The rate-limit storage (Redis) does not answer and the limit fails closed."""


class ClientGone(ServiceError):
    """The client closed the connection before its answer was ready: its queued work was
    dropped. The response (nginx's 499) is never read; it is counted in the metrics."""


#: A body whose JSON nests deeper than the decoder's recursion limit (about 1,000 levels; a
#: request body needs 2). It used to be a 500 with a traceback logged per request.
NESTED_TOO_DEEP = ("the request body's JSON is nested too deeply: send a JSON object of texts "
                   "(a request needs 2 levels)")


class BodyTooLarge(Exception):
    """The request body is larger than MAX_BODY_BYTES."""


#: Domain error -> (status, error type). The only place where status codes are chosen.
STATUS: dict[type[Exception], tuple[int, str]] = {
    InputError: (400, "invalid_request"),
    Unauthorized: (401, "unauthorized"),
    UnknownModel: (404, "model_not_found"),
    TooCostly: (413, "payload_too_large"),
    RateLimited: (429, "rate_limited"),
    ModelNotReady: (503, "model_loading"),
    Overloaded: (503, "overloaded"),
    LimiterUnavailable: (503, "rate_limiter_unavailable"),
    ClientGone: (499, "client_closed_request"),
}


def status_of(exc: Exception) -> tuple[int, str]:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500, "internal_error"


def error_response(request: Request, code: int, type_: str, message: str,
                   headers: dict | None = None) -> JSONResponse:
    rid = getattr(request.state, "request_id", "-")
    request.state.error = type_
    body = {"error": {"code": code, "type": type_, "message": message, "request_id": rid}}
    # Unhandled errors are answered outside the middleware stack: set the id here too.
    return JSONResponse(body, status_code=code, headers={**(headers or {}), "X-Request-ID": rid})


def too_large_response(request: Request) -> JSONResponse:
    """413, for a declared Content-Length over the limit and for a streamed body that
    grows past it."""
    return error_response(request, 413, "payload_too_large",
                          "the request body is too large: send fewer or shorter texts")


def describe_validation(exc: RequestValidationError) -> str:
    """A short message naming each wrong field and what is expected."""
    parts = []
    for err in exc.errors()[:5]:
        loc = [p for p in err.get("loc", ()) if p != "body"]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        where = where or "body"
        if err.get("type") == "json_invalid":
            return "the request body is not valid JSON: send a JSON object"
        if err.get("type") == "model_attributes_type":
            return "the request body must be a JSON object"
        if err.get("type") == "extra_forbidden":
            parts.append(f"{where}: unknown field, remove it")
        elif err.get("type") == "missing":
            parts.append(f"{where}: required field is missing")
        elif err.get("type") in ("string_too_short", "string_pattern_mismatch"):
            parts.append(f"{where} is empty or only whitespace, control or zero-width "
                         "characters: send some text")
        elif err.get("type") == "too_short":
            parts.append(f"{where} is empty: send at least one text")
        elif err.get("type") == "too_long":
            most = (err.get("ctx") or {}).get("max_length")
            parts.append(f"{where} has too many items: send at most {most} per request "
                         "(split the batch)")
        elif err.get("type") == "string_too_long":
            most = (err.get("ctx") or {}).get("max_length")
            parts.append(f"{where} is longer than {most} characters (MAX_TEXT_CHARS): send "
                         "a shorter text")
        elif err.get("type") == "string_unicode":  # a lone surrogate: the contract's words
            parts.append(f"{where} {text_problem(err.get('input')) or 'is not valid Unicode'}")
        elif err.get("type") == "value_error":
            parts.append(str(err.get("msg", "")).removeprefix("Value error, "))
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def install(app) -> None:
    for kind in STATUS:
        app.add_exception_handler(kind, _domain_error)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        message = describe_validation(exc)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if message.startswith("the request body") and not kind.endswith("json"):
            # FastAPI does not parse a body sent without a JSON content type.
            message = (f"the request body must be a JSON object sent with Content-Type: "
                       f"application/json (got {kind or 'no Content-Type'})")
        return error_response(request, 400, "invalid_request", message)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge):
        return too_large_response(request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI wraps errors while reading a body
            return await _too_large(request, exc.__cause__)
        if isinstance(exc.__cause__, RecursionError):  # FastAPI's own parse of a small body
            return error_response(request, 400, "invalid_request", NESTED_TOO_DEEP)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            return error_response(request, 400, "invalid_request", "the request body could "
                                  "not be decoded: send a JSON object encoded in UTF-8")
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:  # Starlette names only the first route of the path
            headers = {**(headers or {}), "Allow": ", ".join(_allowed(request))}
        return error_response(request, exc.status_code, kind, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("request %s failed", getattr(request.state, "request_id", "-"))
        return error_response(request, 500, "internal_error",
                              "the model failed on this request; retry, and report the "
                              "request_id if it persists")


def _allowed(request: Request) -> list[str]:
    """Every method some route of the request's path answers (``GET /`` is the page,
    ``POST /`` text-embeddings-inference's route)."""
    methods: set[str] = set()
    for route in request.app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _domain_error(request: Request, exc: Exception):
    code, kind = status_of(exc)
    return error_response(request, code, kind, str(exc), getattr(exc, "headers", None))


def error_responses(*codes: int) -> dict[int, dict]:
    """OpenAPI ``responses`` for these status codes, derived from ``STATUS`` (each error's
    docstring says when it happens): the table the schema shows is the table the service
    uses."""
    described: dict[int, list[str]] = {500: ["The model failed; the answer carries a "
                                            "request_id to report."]}
    for kind, (code, _) in {**STATUS, BodyTooLarge: (413, "")}.items():
        if code in codes:
            doc = (kind.__doc__ or "").strip().split("\n\n")[0]
            described.setdefault(code, []).append(" ".join(doc.split()))
    described = {c: d for c, d in described.items() if c in codes}
    return {code: {"model": ErrorResponse, "description": " Or: ".join(parts)}
            for code, parts in sorted(described.items())}
