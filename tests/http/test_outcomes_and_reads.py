"""POST /update and the read routes: /predictions, /predictions/{id}, /list-db-contents."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from adapters.bootstrap import create_app
from adapters.settings import Settings
from tests.helpers import README_PREDICT_BODY
from tests.http.support import assert_documented


def test_update_sets_the_true_class_and_returns_the_record(client: TestClient, passenger: dict) -> None:
    created = client.post("/predict", json={"id": 0, "observation": passenger}).json()

    response = client.post("/update", json={"id": 0, "true_class": 1})

    assert response.status_code == 200
    updated = response.json()
    assert updated["true_class"] == 1
    assert updated["updated_at"] > created["updated_at"]
    assert {k: v for k, v in updated.items() if k not in ("true_class", "updated_at")} == {
        k: v for k, v in created.items() if k not in ("true_class", "updated_at")
    }
    assert client.get("/predictions/0").json() == updated
    assert_documented(client, "POST", "/update", response)


@pytest.mark.parametrize(("sent", "stored"), [(0, 0), (1, 1), (True, 1), (False, 0), (1.0, 1), (0.0, 0)])
def test_update_accepts_zero_one_true_and_false(client: TestClient, passenger: dict, sent: object, stored: int) -> None:
    client.post("/predict", json={"id": "p", "observation": passenger})
    assert client.post("/update", json={"id": "p", "true_class": sent}).json()["true_class"] == stored


def test_update_of_an_unknown_id_is_404(client: TestClient) -> None:
    response = client.post("/update", json={"id": 404, "true_class": 1})

    assert response.status_code == 404
    problem = response.json()
    assert problem["type"].endswith("/unknown-prediction")
    assert problem["id"] == 404
    assert_documented(client, "POST", "/update", response)


@pytest.mark.parametrize("bad", [2, -1, "yes", "1", 0.5, None, [1]])
def test_update_with_a_true_class_other_than_0_1_true_false_is_422(
    client: TestClient, passenger: dict, bad: object
) -> None:
    client.post("/predict", json={"id": 0, "observation": passenger})

    response = client.post("/update", json={"id": 0, "true_class": bad})

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "true_class", "message": "must be 0, 1, true or false"}]
    assert client.get("/predictions/0").json()["true_class"] is None


def test_update_needs_id_and_true_class_and_nothing_else(client: TestClient) -> None:
    response = client.post("/update", json={"true_class": 1, "extra": True})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"id", "extra"}


def test_predictions_are_listed_newest_first_one_page_at_a_time(client: TestClient, passenger: dict) -> None:
    for i in range(5):
        client.post("/predict", json={"id": i, "observation": passenger})

    first = client.get("/predictions", params={"limit": 2})
    second = client.get("/predictions", params={"limit": 2, "cursor": first.json()["next_cursor"]})
    last = client.get("/predictions", params={"limit": 2, "cursor": second.json()["next_cursor"]})

    assert [p["id"] for p in first.json()["predictions"]] == [4, 3]
    assert [p["id"] for p in second.json()["predictions"]] == [2, 1]
    assert [p["id"] for p in last.json()["predictions"]] == [0]
    assert last.json()["next_cursor"] is None
    assert_documented(client, "GET", "/predictions", first)


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"limit": "-1"},
                                    {"cursor": "not-a-cursor"}])
def test_bad_limit_or_cursor_is_422(client: TestClient, params: dict) -> None:
    response = client.get("/predictions", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] in ("limit", "cursor")
    assert_documented(client, "GET", "/predictions", response)


def test_path_id_of_digits_is_an_integer_and_quotes_make_a_string(client: TestClient, passenger: dict) -> None:
    client.post("/predict", json={"id": 42, "observation": passenger})
    client.post("/predict", json={"id": "42", "observation": {**passenger, "Age": 1.0}})
    client.post("/predict", json={"id": "a/b c", "observation": passenger})
    client.post("/predict", json={"id": -3, "observation": passenger})

    assert client.get("/predictions/42").json()["id"] == 42
    assert client.get("/predictions/%2242%22").json()["id"] == "42"
    assert client.get("/predictions/a%2Fb%20c").json()["id"] == "a/b c"
    assert client.get("/predictions/-3").json()["id"] == -3


def test_get_of_an_unknown_id_is_404(client: TestClient) -> None:
    response = client.get("/predictions/nobody")
    assert response.status_code == 404
    assert response.json()["id"] == "nobody"
    assert_documented(client, "GET", "/predictions/{id}", response)


@pytest.mark.parametrize(
    "path",
    ["/predictions/99999999999999999999", "/predictions/" + "9" * 5000, "/predictions/", "/predictions/%01",
     "/predictions/" + "x" * 300],
)
def test_get_of_a_path_that_cannot_name_an_id_is_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["type"].endswith("/unknown-prediction")
    assert_documented(client, "GET", "/predictions/{id}", response)


def test_leading_zeros_in_a_path_id_are_ignored(client: TestClient, passenger: dict) -> None:
    client.post("/predict", json={"id": 0, "observation": passenger})
    client.post("/predict", json={"id": -7, "observation": passenger})
    assert client.get("/predictions/" + "0" * 300).json()["id"] == 0
    assert client.get("/predictions/-007").json()["id"] == -7


def test_list_db_contents_is_a_plain_list_newest_first(client: TestClient, passenger: dict) -> None:
    for i in range(3):
        client.post("/predict", json={"id": i, "observation": passenger})

    response = client.get("/list-db-contents")

    assert response.status_code == 200
    assert [p["id"] for p in response.json()] == [2, 1, 0]
    assert_documented(client, "GET", "/list-db-contents", response)


def test_sqlite_store_keeps_predictions_across_app_restarts(tmp_path: Path) -> None:
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'predictions.db'}")
    with TestClient(create_app(settings)) as first_run:
        created = first_run.post("/predict", content=README_PREDICT_BODY, headers={"Content-Type": "application/json"})
        assert created.status_code == 200
        assert first_run.post("/update", json={"id": 0, "true_class": 0}).status_code == 200

    with TestClient(create_app(settings)) as second_run:
        stored = second_run.get("/predictions/0").json()
        listed = second_run.get("/list-db-contents").json()

    assert stored["true_class"] == 0
    assert stored["proba"] == created.json()["proba"]
    assert listed == [stored]
