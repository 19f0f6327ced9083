"""/openapi.json and /docs describe exactly the routes the app serves, and work offline."""

from __future__ import annotations

import re

from starlette.routing import Route
from starlette.testclient import TestClient

from adapters.http.problems import PROBLEM_TYPES
from tests.helpers import MakeClient


def served_operations(client: TestClient) -> set[tuple[str, str]]:
    """Every (route, method) the app answers with anything but 405, asked of each of its routes."""
    operations = set()
    for route in client.app.routes:  # type: ignore[attr-defined]
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+)(:\w+)?\}", "{id}", route.path)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            if client.request(method, path.replace("{id}", "1")).status_code != 405:
                operations.add((path, method.lower()))
    return operations


def test_the_document_lists_every_route_and_nothing_else(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented == served_operations(client)


def test_the_document_is_valid_openapi_3_1(make_client: MakeClient) -> None:
    import openapi_spec_validator as validator
    for client in (make_client(), make_client(api_key="k" * 20, predict_requires_key=True)):
        document = client.get("/openapi.json").json()
        assert document["openapi"] == "3.1.0"
        validator.validate(document)


def test_every_error_response_is_problem_json_and_every_operation_can_500(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert "200" in op["responses"] and "500" in op["responses"], (path, method)
            for status, response in op["responses"].items():
                if status != "200":
                    assert list(response["content"]) == ["application/problem+json"], (path, method, status)


def test_body_routes_document_400_413_415_and_422(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path in ("/predict", "/update"):
        assert {"400", "413", "415", "422", "503"} <= set(document["paths"][path]["post"]["responses"])


def test_the_observation_schema_is_the_models(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    observation = document["components"]["schemas"]["Observation"]
    card = client.get("/model").json()
    assert observation["required"] == [f["name"] for f in card["features"]]
    assert observation["properties"]["Pclass"]["type"] == ["integer", "null"]
    assert observation["properties"]["Sex"]["type"] == ["string", "null"]


def test_every_problem_type_is_documented(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for problem in PROBLEM_TYPES:
        assert problem.uri in document["info"]["description"]
    assert set(document["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]) == {
        p.uri for p in PROBLEM_TYPES
    }


def test_docs_page_is_self_contained_html_describing_every_route(client: TestClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    for path, _ in served_operations(client):
        assert f"<code>{path}</code>" in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
