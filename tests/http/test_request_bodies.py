"""What the app does with bodies it cannot take: the right 4xx problem, never a 500."""

from __future__ import annotations

import anyio
import pytest
from starlette.testclient import TestClient

from tests.helpers import MakeClient
from tests.http.support import PROBLEM_JSON, assert_documented


def assert_problem(response: object, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM_JSON  # type: ignore[attr-defined]
    problem = response.json()  # type: ignore[attr-defined]
    assert problem["status"] == status
    assert problem["type"] == f"https://errors.sklearn-serve.dev/{kind}"
    assert problem["title"] and problem["detail"]
    return problem  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": 0, "observation": ',
        b"{'id': 0}",
        b"",
        b"   ",
        b'{"id": 0} trailing',
        "\ufeff{}".encode(),
    ],
)
def test_malformed_json_is_400(client: TestClient, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "malformed-request")
    assert_documented(client, "POST", "/predict", response)


def test_body_that_is_not_utf8_is_400(client: TestClient) -> None:
    body = '{"id": "é"}'.encode("latin-1")
    response = client.post("/update", content=body, headers={"Content-Type": "application/json"})
    assert "UTF-8" in assert_problem(response, 400, "malformed-request")["detail"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_400(client: TestClient, literal: str) -> None:
    body = f'{{"id": 0, "observation": {{"Age": {literal}}}}}'.encode()
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert literal.lstrip("-") in assert_problem(response, 400, "malformed-request")["detail"]


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" * 320, "9" * 5000])
def test_numbers_beyond_a_64_bit_float_are_400(client: TestClient, number: str) -> None:
    body = f'{{"id": 0, "observation": {{"Fare": {number}}}}}'.encode()
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "malformed-request")


def test_nesting_deeper_than_32_levels_is_400(client: TestClient, passenger: dict) -> None:
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    response = client.post("/predict", json={"id": 0, "observation": {**passenger, "extra": deep}})
    assert "nested" in assert_problem(response, 400, "malformed-request")["detail"]


def test_extremely_deep_nesting_is_400_not_a_crash(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=1 << 20)
    body = b"[" * 200_000 + b"]" * 200_000
    assert_problem(client.post("/predict", content=body), 400, "malformed-request")


def test_nesting_within_the_limit_is_parsed_and_judged_by_the_request_schema(
    client: TestClient, passenger: dict
) -> None:
    deep: object = 1
    for _ in range(29):
        deep = [deep]
    response = client.post("/predict", json={"id": 0, "observation": {**passenger, "extra": deep}})
    # Parsed (not a 400): then refused as a value a stored observation may not hold.
    assert [e["field"] for e in assert_problem(response, 422, "validation")["errors"]] == ["observation.extra"]


def test_lone_surrogate_escape_is_400_and_a_surrogate_pair_is_fine(client: TestClient, passenger: dict) -> None:
    lone = client.post("/predict", content=b'{"id": "\\ud800", "observation": {}}',
                       headers={"Content-Type": "application/json"})
    pair = client.post("/predict", json={"id": "smile \U0001f600", "observation": passenger})
    assert_problem(lone, 400, "malformed-request")
    assert pair.status_code == 200
    assert pair.json()["id"] == "smile \U0001f600"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/json; charset=latin-1", "application/xml"],
)
def test_a_body_that_is_not_json_is_415(client: TestClient, content_type: str) -> None:
    response = client.post("/predict", content=b'{"id": 0, "observation": {}}', headers={"Content-Type": content_type})
    assert_problem(response, 415, "unsupported-media-type")
    assert_documented(client, "POST", "/predict", response)


@pytest.mark.parametrize("content_type", [None, "application/json; charset=UTF-8", "application/merge-patch+json",
                                          "Application/JSON"])
def test_json_media_types_and_a_missing_content_type_are_read_as_json(
    client: TestClient, content_type: str | None, passenger: dict
) -> None:
    import json

    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps({"id": 0, "observation": passenger}).encode()
    response = client.post("/predict", content=body, headers=headers)
    assert response.status_code == 200


def test_body_over_the_limit_by_content_length_is_413(make_client: MakeClient, passenger: dict) -> None:
    client = make_client(max_body_bytes=100)
    response = client.post("/predict", json={"id": 0, "observation": passenger})
    problem = assert_problem(response, 413, "body-too-large")
    assert problem["max_body_bytes"] == 100
    assert_documented(client, "POST", "/predict", response)


def test_streamed_body_over_the_limit_is_413_and_not_read_to_the_end(make_client: MakeClient) -> None:
    # Straight ASGI, because TestClient buffers a streamed body before sending it.
    app = make_client(max_body_bytes=1000).app
    chunks_read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": b" " * 100, "more_body": chunks_read < 100}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/update", "raw_path": b"/update", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    anyio.run(app, scope, receive, send)

    assert sent[0]["status"] == 413
    assert chunks_read == 11


def test_a_body_exactly_at_the_limit_is_read(make_client: MakeClient) -> None:
    body = b'{"id": 1, "true_class": 1}'
    client = make_client(max_body_bytes=len(body))
    assert client.post("/update", content=body).status_code == 404


def test_an_invalid_content_length_is_400(client: TestClient) -> None:
    from starlette.requests import Request

    from adapters.http.body import read_body
    from adapters.http.errors import MalformedRequest

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    request = Request({"type": "http", "method": "POST", "headers": [(b"content-length", b"12abc")]}, receive)
    with pytest.raises(MalformedRequest):
        anyio.run(read_body, request, 100)


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/nowhere"), 404, "not-found")
    assert_problem(client.post("/predict/"), 404, "not-found")


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/predictions/1")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET, HEAD"
    response = client.get("/predict")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "POST"
