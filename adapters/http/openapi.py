"""The OpenAPI 3.1 document of this API, and the same document as a self-contained HTML page.

Generated from the declarations the app itself uses: the operations it serves
(adapters/http/operations.py), the request bodies it checks (adapters/http/shapes.py, the
observation schema from the model's manifest) and the responses it makes
(adapters/http/responses.py). The 401 responses and security requirements appear only when an
API key is configured; every operation lists every status it can answer.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from adapters.http.body import MAX_DEPTH
from adapters.http.contract import components
from adapters.http.operations import JSON, Operation
from adapters.http.problems import AUTH_CHALLENGE, INTERNAL, PROBLEM_MEDIA_TYPE, PROBLEM_TYPES, UNAUTHORIZED
from adapters.http.responses import PROBLEM
from core.model import Model

TITLE = "sklearn-serve"
REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    # Unconstrained on purpose: an invalid id is replaced, never refused.
    "description": "Echoed in the response and the log when it is 1-200 printable ASCII "
    "characters; otherwise replaced by a new id.",
    "schema": {"type": "string"},
}


def openapi_document(
    model: Model, served: Sequence[Operation], *, max_body_bytes: int, auth_enabled: bool
) -> dict[str, Any]:
    """The document of the `served` operations, for `model` and the configured limits."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in served:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation, auth_enabled)
    problem_list = "\n".join(f"- `{p.uri}` ({p.status}) {p.title}: {p.meaning}" for p in PROBLEM_TYPES)
    named = [op.request for op in served if op.request] + [op.body for op in served] + [PROBLEM]
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": model.version[:12],
            "description": (
                "A scikit-learn classifier behind an API: every prediction is recorded with its id, and its "
                "true class can be added later.\n\n"
                f"Request bodies are JSON (UTF-8, at most {max_body_bytes} bytes, nested at most {MAX_DEPTH} "
                "levels, numbers finite and within the range of a 64-bit float). A request without "
                "Content-Type is read as JSON; any other media type, or a Content-Encoding other than "
                "identity, is a 415.\n\n"
                "Every response carries `X-Request-ID` (the request's own when it sent 1-200 printable ASCII "
                "characters, else a new one). Errors are RFC 9457 problem details "
                f"(`{PROBLEM_MEDIA_TYPE}`) with these types:\n\n{problem_list}"
            ),
        },
        "paths": paths,
        "components": {"parameters": {"RequestId": REQUEST_ID}, "schemas": components(*named)},
    }
    if auth_enabled:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    return document


def _operation(operation: Operation, auth_enabled: bool) -> dict[str, Any]:
    guarded = operation.needs_key and auth_enabled
    statuses = set(operation.problems) | {INTERNAL} | ({UNAUTHORIZED} if guarded else set())
    responses: dict[str, Any] = {
        "200": {"description": operation.answer, "content": {operation.media_type: {"schema": operation.body.schema()}}}
    }
    for status in sorted({p.status for p in statuses}):
        kinds = sorted((p for p in statuses if p.status == status), key=lambda p: p.name)
        response: dict[str, Any] = {
            "description": " / ".join(f"{p.title}: {p.meaning}" for p in kinds),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM.schema()}},
        }
        if status == UNAUTHORIZED.status:
            response["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": f"{AUTH_CHALLENGE} (a challenge)"}
            }
        responses[str(status)] = response
    described: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": operation.description,
        "parameters": [{"$ref": "#/components/parameters/RequestId"}, *operation.parameters],
        "responses": responses,
    }
    if operation.request:
        described["requestBody"] = {"required": True, "content": {JSON: {"schema": operation.request.schema()}}}
    if guarded:
        described["security"] = [{"bearer": []}, {"apiKey": []}]
    return described


def render_html(document: dict[str, Any]) -> str:
    """The document as one HTML page: no scripts and nothing fetched, so it works offline."""
    e = html.escape
    info = document["info"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{e(info['title'])} API</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "pre{background:#f4f4f4;padding:.6rem;overflow:auto;font-size:13px}"
        "h2{border-top:1px solid #ccc;padding-top:1rem}code{background:#f4f4f4}"
        ".m{font-weight:bold;text-transform:uppercase;margin-right:.5rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;"
        "vertical-align:top}</style></head><body>",
        f"<h1>{e(info['title'])} API <small>model {e(info['version'])}</small></h1>",
        *(f"<p>{e(p)}</p>" for p in info["description"].split("\n\n")),
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>',
    ]
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            parts.append(f'<h2 id="{e(op["operationId"])}"><span class=m>{e(method)}</span><code>{e(path)}</code></h2>')
            parts.append(f"<p><b>{e(op['summary'])}</b></p><p>{e(op['description'])}</p>")
            if op.get("security"):
                parts.append("<p>Needs the API key: <code>Authorization: Bearer &lt;key&gt;</code> or "
                             "<code>X-API-Key: &lt;key&gt;</code>.</p>")
            params = [p for p in op.get("parameters", []) if "$ref" not in p]
            if params:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>")
                parts += [
                    f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
                    f"<td><code>{e(json.dumps(p['schema']))}</code>{' ' + e(p.get('description', ''))}</td></tr>"
                    for p in params
                ]
                parts.append("</table>")
            if "requestBody" in op:
                parts.append(f"<p>Request body:</p><pre>{e(_pretty(op['requestBody'], document))}</pre>")
            parts.append("<table><tr><th>status</th><th>meaning</th></tr>")
            parts += [
                f"<tr><td>{e(status)}</td><td>{e(response['description'])}</td></tr>"
                for status, response in op["responses"].items()
            ]
            parts.append("</table>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        parts.append(f'<h3 id="{e(name)}">{e(name)}</h3><pre>{e(json.dumps(schema, indent=2))}</pre>')
    parts.append("</body></html>")
    return "\n".join(parts)


def _pretty(request_body: dict[str, Any], document: dict[str, Any]) -> str:
    ref = request_body["content"][JSON]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[-1]
    return f"{name}: " + json.dumps(document["components"]["schemas"][name], indent=2)
