"""``/docs``: the API reference as one HTML page, made on the server from the OpenAPI schema.

FastAPI's Swagger UI loads its script and style from a CDN: a page that runs a third party's
code beside the service's key, fetched by every browser that opens it, and blank on a
network without the internet. This page needs nothing from outside: no script at all (its
Content-Security-Policy forbids scripts and every load but its inline style), every value
escaped. It lists each endpoint with its summary, its request and response bodies, its
error codes and the key it needs. ``/openapi.json`` stays the machine-readable schema.
"""

from __future__ import annotations

import html
import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from polarity.serve.settings import Settings

#: No script, no remote load, no framing: the page is text and an inline style.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
STYLE = ("body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
         "padding:0 1rem}code,pre{background:#f4f4f4;padding:.1rem .3rem}"
         "pre{padding:.6rem;overflow:auto}h2{border-top:1px solid #ccc;padding-top:1rem}"
         "td,th{padding:.2rem .6rem;text-align:left;vertical-align:top}")


def router(settings: Settings) -> APIRouter:
    r = APIRouter(tags=["ops"])
    r.add_api_route("/docs", docs_page, methods=["GET"], response_class=HTMLResponse,
                    include_in_schema=False)
    return r


async def docs_page(request: Request) -> HTMLResponse:
    """The reference page of this service's OpenAPI schema."""
    return HTMLResponse(render(request.app.openapi()),
                        headers={"Content-Security-Policy": POLICY,
                                 "X-Content-Type-Options": "nosniff"})


def render(spec: dict) -> str:
    info = spec.get("info", {})
    parts = [f"<!doctype html><meta charset=utf-8><title>{_e(info.get('title', 'API'))}"
             f"</title><style>{STYLE}</style>",
             f"<h1>{_e(info.get('title', ''))} {_e(info.get('version', ''))}</h1>",
             f"<p>{_e(info.get('description', ''))}</p>", _security(spec),
             "<p>Machine-readable: <a href=/openapi.json><code>/openapi.json</code></a>.</p>"]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(_operation(spec, path, method, op))
    return "\n".join(parts)


def _security(spec: dict) -> str:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    if not schemes:
        return ""
    rows = "".join(f"<li><code>{_e(_scheme(s))}</code>: {_e(s.get('description', ''))}</li>"
                   for s in schemes.values())
    return f"<h2>Keys</h2><p>Send the key in one of:</p><ul>{rows}</ul>"


def _scheme(scheme: dict) -> str:
    if scheme.get("type") == "apiKey":
        return f"{scheme.get('name')}: <key>"
    return f"Authorization: {str(scheme.get('scheme', '')).title()} <key>"


def _operation(spec: dict, path: str, method: str, op: dict) -> str:
    out = [f"<h2><code>{_e(method.upper())} {_e(path)}</code></h2>",
           f"<p>{_e(op.get('description') or op.get('summary', ''))}</p>"]
    if op.get("security"):
        out.append("<p>Needs a key.</p>")
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if body:
        out.append(f"<h3>Request body</h3>{_schema(spec, body.get('schema', {}))}")
    rows = []
    for code, response in op.get("responses", {}).items():
        content = response.get("content", {}).get("application/json", {})
        shape = _name(content.get("schema", {}))
        rows.append(f"<tr><td>{_e(code)}</td><td>{_e(response.get('description', ''))}</td>"
                    f"<td>{_e(shape)}</td></tr>")
    out.append(f"<h3>Responses</h3><table>{''.join(rows)}</table>")
    return "\n".join(out)


def _schema(spec: dict, schema: dict) -> str:
    """A body schema, its reference resolved one level, as indented JSON."""
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = spec["components"]["schemas"].get(ref.rsplit("/", 1)[-1], schema)
    return f"<pre>{_e(json.dumps(schema, indent=2))}</pre>"


def _name(schema: dict) -> str:
    return schema.get("$ref", "").rsplit("/", 1)[-1] or schema.get("type", "")


def _e(value) -> str:
    return html.escape(str(value))
