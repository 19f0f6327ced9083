"""The optional API key: which routes need it, how it is sent, what a refusal looks like."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.helpers import MakeClient
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


def outcome_recorded(locked: TestClient) -> dict:
    """Prediction 0 of `locked`, with its outcome recorded by a caller with the key."""
    updated = locked.post("/update", json={"id": 0, "true_class": 1}, headers={"X-API-Key": KEY})
    assert updated.status_code == 200 and updated.json()["true_class"] == 1
    assert updated.json()["updated_at"] != updated.json()["created_at"]
    return updated.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}])
def test_a_replay_without_the_key_does_not_show_the_recorded_outcome(
    locked: TestClient, passenger: dict, headers: dict
) -> None:
    stored = outcome_recorded(locked)

    replay = locked.post("/predict", json={"id": 0, "observation": passenger}, headers=headers)

    assert replay.status_code == 200
    assert replay.json()["true_class"] is None
    assert replay.json()["updated_at"] == replay.json()["created_at"] == stored["created_at"]
    assert {k: v for k, v in replay.json().items() if k not in ("true_class", "updated_at")} == {
        k: v for k, v in stored.items() if k not in ("true_class", "updated_at")
    }


def test_a_batch_replay_without_the_key_does_not_show_the_recorded_outcome(
    locked: TestClient, passenger: dict
) -> None:
    outcome_recorded(locked)
    batch = {"observations": [{"id": 0, "observation": passenger}, {"id": 1, "observation": passenger},
                              {"id": 0, "observation": passenger}]}

    replay = locked.post("/predict", json=batch)

    assert replay.status_code == 200
    assert [(p["id"], p["true_class"], p["updated_at"] == p["created_at"]) for p in replay.json()["predictions"]] == [
        (0, None, True), (1, None, True), (0, None, True)
    ]


def test_a_replay_with_the_key_shows_the_stored_record_whole(locked: TestClient, passenger: dict) -> None:
    stored = outcome_recorded(locked)

    with_key = {"Authorization": f"Bearer {KEY}"}
    replay = locked.post("/predict", json={"id": 0, "observation": passenger}, headers=with_key)

    assert replay.json() == stored


def test_without_an_api_key_configured_a_replay_shows_the_stored_record(
    make_client: MakeClient, passenger: dict
) -> None:
    client = make_client()
    client.post("/predict", json={"id": 0, "observation": passenger})
    client.post("/update", json={"id": 0, "true_class": 0})

    assert client.post("/predict", json={"id": 0, "observation": passenger}).json()["true_class"] == 0


def test_no_open_route_shows_an_outcome_or_its_time(locked: TestClient, passenger: dict) -> None:
    """Every route a caller without the key may reach, after an outcome was recorded."""
    stored = outcome_recorded(locked)
    answers = [locked.get(path).text for path in OPEN]
    answers += [
        locked.post("/predict", json={"id": 0, "observation": {**passenger, "Age": 30.0}}).text,  # 409
        locked.post("/predict", json={"observations": [{"id": 0, "observation": {**passenger, "Age": 30.0}}]}).text,
        locked.post("/predict", json={"id": 0, "observation": passenger}).text,
        locked.get("/stats").text, locked.get("/metrics").text,  # 401
    ]
    for answer in answers:
        assert stored["updated_at"] not in answer
        assert '"true_class":1' not in answer.replace(" ", "")
