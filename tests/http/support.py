"""Checks that responses are what the app's own OpenAPI document says they are."""

from __future__ import annotations

import weakref
from typing import Any

import jsonschema
import referencing
from referencing.jsonschema import DRAFT202012
from starlette.testclient import TestClient

PROBLEM_JSON = "application/problem+json"
DOCUMENT_URI = "urn:sklearn-serve:openapi"


def assert_documented(client: TestClient, method: str, path_template: str, response: Any) -> None:
    """`response` has a status the document lists for the operation, and a body fitting its schema."""
    document, registry = _document(client)
    operation = document["paths"][path_template][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path_template} answered undocumented {status}"
    content = operation["responses"][status]["content"]
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in content, f"{media_type} is not documented for {status}"
    if media_type.endswith("json"):
        schema = _absolute_refs(content[media_type]["schema"])
        jsonschema.Draft202012Validator(schema, registry=registry).validate(response.json())


_documents: weakref.WeakKeyDictionary[TestClient, tuple[dict[str, Any], Any]] = weakref.WeakKeyDictionary()


def _document(client: TestClient) -> tuple[dict[str, Any], Any]:
    """The app's document and a schema registry holding it, fetched once per client."""
    cached = _documents.get(client)
    if cached is None:
        document = client.get("/openapi.json").json()
        registry = referencing.Registry().with_resource(
            DOCUMENT_URI, referencing.Resource.from_contents(document, default_specification=DRAFT202012)
        )
        cached = _documents[client] = (document, registry)
    return cached


def _absolute_refs(schema: Any) -> Any:
    """The operation's schema refers to `#/components/...` of the document: make that explicit."""
    if isinstance(schema, dict):
        return {
            key: DOCUMENT_URI + value if key == "$ref" and value.startswith("#") else _absolute_refs(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute_refs(value) for value in schema]
    return schema
