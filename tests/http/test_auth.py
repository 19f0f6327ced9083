"""The optional API key: which routes need it, how it is sent, what a refusal looks like."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.http.conftest import MakeClient
from tests.http.support import assert_documented

KEY = "s3cret-Key_0123456789"
PROTECTED = [
    ("POST", "/update", {"id": 0, "true_class": 1}),
    ("GET", "/predictions", None),
    ("GET", "/predictions/0", None),
    ("GET", "/list-db-contents", None),
]
OPEN = ["/health", "/model", "/openapi.json", "/docs", "/", "/dashboard.js", "/dashboard.css"]


@pytest.fixture
def locked(make_client: MakeClient, passenger: dict) -> TestClient:
    client = make_client(api_key=KEY)
    assert client.post("/predict", json={"id": 0, "observation": passenger}).status_code == 200
    return client


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_protected_routes_without_a_key_are_401_with_a_challenge(
    locked: TestClient, method: str, path: str, body: dict | None
) -> None:
    response = locked.request(method, path, json=body)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="sklearn-serve"'
    assert response.json()["type"].endswith("/unauthorized")


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_protected_routes_with_a_wrong_key_are_401(
    locked: TestClient, method: str, path: str, body: dict | None
) -> None:
    for headers in ({"Authorization": "Bearer wrong"}, {"X-API-Key": KEY + "x"}, {"Authorization": f"Basic {KEY}"}):
        response = locked.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, headers
        assert "www-authenticate" in response.headers


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {KEY}"},
                                     {"X-API-Key": KEY}])
def test_protected_routes_take_the_key_in_either_header(
    locked: TestClient, method: str, path: str, body: dict | None, headers: dict
) -> None:
    assert locked.request(method, path, json=body, headers=headers).status_code == 200


def test_the_key_is_checked_before_the_body_is_read(locked: TestClient) -> None:
    response = locked.post("/update", content=b"not json", headers={"Content-Type": "text/plain"})
    assert response.status_code == 401
    assert_documented(locked, "POST", "/update", response)


@pytest.mark.parametrize("path", OPEN)
def test_operational_routes_stay_open(locked: TestClient, path: str) -> None:
    assert locked.get(path).status_code == 200


def test_predict_is_open_unless_predict_requires_key(make_client: MakeClient, passenger: dict) -> None:
    body = {"id": 1, "observation": passenger}
    open_predict = make_client(api_key=KEY)
    closed_predict = make_client(api_key=KEY, predict_requires_key=True)

    assert open_predict.post("/predict", json=body).status_code == 200
    refused = closed_predict.post("/predict", json=body)
    assert refused.status_code == 401
    assert_documented(closed_predict, "POST", "/predict", refused)
    assert closed_predict.post("/predict", json=body, headers={"X-API-Key": KEY}).status_code == 200


def test_without_a_configured_key_every_route_is_open(client: TestClient, passenger: dict) -> None:
    client.post("/predict", json={"id": 0, "observation": passenger})
    for method, path, body in PROTECTED:
        assert client.request(method, path, json=body).status_code == 200


def test_the_document_declares_security_only_where_the_key_is_needed(make_client: MakeClient) -> None:
    locked = make_client(api_key=KEY).get("/openapi.json").json()
    unlocked = make_client().get("/openapi.json").json()

    secured = {(path, method) for path, ops in locked["paths"].items() for method, op in ops.items()
               if "security" in op}
    with_401 = {(path, method) for path, ops in locked["paths"].items() for method, op in ops.items()
                if "401" in op["responses"]}
    assert secured == with_401 == {("/update", "post"), ("/predictions", "get"), ("/predictions/{id}", "get"),
                                   ("/list-db-contents", "get"), ("/stats", "get"), ("/metrics", "get")}
    assert set(locked["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert not any("401" in op["responses"] for ops in unlocked["paths"].values() for op in ops.values())
    assert "securitySchemes" not in unlocked["components"]
