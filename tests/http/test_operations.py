"""What operators rely on: health, request ids, one log line per request, no leaks, no stack traces."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.storage.memory import MemoryStore
from core.errors import StorageError
from core.records import PredictionRecord
from tests.helpers import MakeClient
from tests.http.support import PROBLEM_JSON, assert_documented


class BrokenStore(MemoryStore):
    """A store whose backend is gone: every call raises StorageError, as the real ones do."""

    def __init__(self, message: str = "cannot open SQLite store '/srv/secret/path.db': disk I/O error") -> None:
        super().__init__()
        self.message = message

    def check(self) -> None:
        raise StorageError(self.message)

    def record_many(
        self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]] | None = None
    ) -> list[tuple[PredictionRecord, bool]]:
        raise StorageError(self.message)


class BuggyStore(MemoryStore):
    """A store with a bug: it raises something no adapter translated."""

    def get(self, prediction_id: Any) -> PredictionRecord:
        raise RuntimeError("secret internals: /srv/app/store.py line 12")


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "sklearn_serve.http" and r.getMessage().startswith('{"request_id"')]


def test_health_is_ok_with_the_model_version_when_the_store_answers(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["store"] == "ok"
    assert health["model_version"] == client.get("/model").json()["model_version"]
    assert_documented(client, "GET", "/health", response)


def test_health_is_503_when_the_store_check_fails_and_hides_the_cause(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(BrokenStore())
    with caplog.at_level(logging.INFO, logger="sklearn_serve"):
        response = client.get("/health")

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"].endswith("/store-unavailable")
    assert "/srv/secret" not in response.text
    assert "/srv/secret" in caplog.text
    assert_documented(client, "GET", "/health", response)


def test_a_failing_store_on_predict_is_503(make_client: MakeClient, passenger: dict) -> None:
    client = make_client(BrokenStore())
    response = client.post("/predict", json={"id": 0, "observation": passenger})
    assert response.status_code == 503
    assert_documented(client, "POST", "/predict", response)


def test_an_unexpected_error_is_a_bare_500_problem_and_is_logged(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(BuggyStore())
    with caplog.at_level(logging.INFO, logger="sklearn_serve"):
        response = client.get("/predictions/1", headers={"X-Request-ID": "trace-me"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"].endswith("/internal")
    assert response.json()["request_id"] == "trace-me"
    assert "secret" not in response.text and "Traceback" not in response.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "trace-me" in errors[0].getMessage() and errors[0].exc_info is not None
    assert access_lines(caplog)[-1]["status"] == 500


def test_the_model_card_describes_the_served_model(client: TestClient) -> None:
    card = client.get("/model").json()
    assert card["engine"] == "fast"
    assert card["engine_reason"].startswith("fast (linear form of LogisticRegression): agrees with scikit-learn")
    assert [f["name"] for f in card["features"]] == ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Cabin",
                                                     "Embarked"]


def test_a_valid_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/health", headers={"X-Request-ID": "abc-123 from the load balancer"})
    assert response.headers["x-request-id"] == "abc-123 from the load balancer"


@pytest.mark.parametrize("bad", ["", "x" * 201, "tab\tinside", "caf\u00e9"])
def test_an_invalid_request_id_is_replaced_by_a_new_one(client: TestClient, bad: str) -> None:
    response = client.get("/health", headers=[("X-Request-ID", bad.encode("latin-1"))])  # type: ignore[list-item]
    new = response.headers["x-request-id"]
    assert new != bad and len(new) == 32 and int(new, 16) >= 0


def test_a_request_id_is_generated_when_absent_and_is_on_problems_too(client: TestClient) -> None:
    first = client.get("/nowhere")
    second = client.get("/nowhere")
    generated = uuid.UUID(hex=first.headers["x-request-id"])
    assert generated.version == 4 and generated.variant == uuid.RFC_4122
    assert generated.hex == first.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.json()["request_id"] == first.headers["x-request-id"]


def test_one_json_log_line_per_request_with_route_status_and_latency_but_never_the_key(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, passenger: dict
) -> None:
    key = "do-not-log-me-0123456789"
    client = make_client(api_key=key)
    client.post("/predict", json={"id": "private-id", "observation": passenger})
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        client.get("/predictions/private-id", headers={"Authorization": f"Bearer {key}", "X-Request-ID": "req-1"})
        client.get("/predictions/private-id", headers={"X-API-Key": "wrong-" + key, "X-Request-ID": "req-2"})

    lines = access_lines(caplog)
    assert [(line["request_id"], line["method"], line["route"], line["status"]) for line in lines] == [
        ("req-1", "GET", "/predictions/{id}", 200),
        ("req-2", "GET", "/predictions/{id}", 401),
    ]
    assert all(isinstance(line["latency_ms"], float) for line in lines)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("sklearn_serve"))
    assert key not in caplog.text
    assert "private-id" not in ours


def test_responses_say_nosniff(client: TestClient) -> None:
    assert client.get("/health").headers["x-content-type-options"] == "nosniff"
