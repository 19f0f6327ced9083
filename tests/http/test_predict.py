"""POST /predict, one observation and batches, through the real app."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from adapters.storage.memory import MemoryStore
from tests.helpers import README_PREDICT_BODY, MakeClient
from tests.http.support import PROBLEM_JSON, assert_documented

RECORD_FIELDS = {
    "id", "observation_id", "observation", "proba", "predicted_class", "threshold", "model_version",
    "true_class", "warnings", "created_at", "updated_at",
}


def test_readme_curl_request_returns_the_documented_fields(client: TestClient) -> None:
    response = client.post("/predict", content=README_PREDICT_BODY, headers={"Content-Type": "application/json"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    record = response.json()
    assert set(record) == RECORD_FIELDS
    assert record["id"] == record["observation_id"] == 0
    assert 0 <= record["proba"] <= 1
    assert record["predicted_class"] == (record["proba"] >= record["threshold"])
    assert record["true_class"] is None
    assert record["warnings"] == []
    assert_documented(client, "POST", "/predict", response)


def test_curl_style_header_without_space_is_accepted(client: TestClient) -> None:
    # curl -H "Content-Type:application/json" sends exactly this header line.
    response = client.post("/predict", content=README_PREDICT_BODY, headers=[("Content-Type", "application/json")])
    assert response.status_code == 200


def test_retry_with_same_id_and_observation_returns_the_identical_record(client: TestClient, passenger: dict) -> None:
    first = client.post("/predict", json={"id": "abc", "observation": passenger})
    again = client.post("/predict", json={"id": "abc", "observation": dict(reversed(list(passenger.items())))})

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()


def test_same_id_with_another_observation_is_a_409_and_changes_nothing(client: TestClient, passenger: dict) -> None:
    first = client.post("/predict", json={"id": 7, "observation": passenger})
    conflict = client.post("/predict", json={"id": 7, "observation": {**passenger, "Age": 60}})

    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == PROBLEM_JSON
    problem = conflict.json()
    assert problem["type"].endswith("/conflicting-prediction")
    assert problem["id"] == 7
    assert client.get("/predictions/7").json() == first.json()
    assert_documented(client, "POST", "/predict", conflict)


def test_ids_one_and_string_one_are_different_predictions(client: TestClient, passenger: dict) -> None:
    assert client.post("/predict", json={"id": 1, "observation": passenger}).status_code == 200
    other = client.post("/predict", json={"id": "1", "observation": {**passenger, "Age": 50}})
    assert other.status_code == 200
    assert other.json()["id"] == "1"


def test_unknown_feature_is_a_warning_unless_strict(client: TestClient, passenger: dict) -> None:
    lenient = client.post("/predict", json={"id": 1, "observation": {**passenger, "Name": "Braund"}})
    strict = client.post("/predict", json={"id": 2, "observation": {**passenger, "Name": "Braund"}, "strict": True})

    assert lenient.status_code == 200
    assert any("Name" in w for w in lenient.json()["warnings"])
    assert strict.status_code == 422
    assert strict.json()["errors"] == [{"field": "observation.Name", "message": "is not a feature of this model"}]


def test_invalid_observation_names_every_bad_field(client: TestClient, passenger: dict) -> None:
    response = client.post("/predict", json={"id": 1, "observation": {**passenger, "Age": "old", "Pclass": -1}})

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/validation")
    assert {e["field"] for e in problem["errors"]} == {"observation.Age", "observation.Pclass"}
    assert_documented(client, "POST", "/predict", response)


def test_missing_and_unknown_top_level_fields_are_422(client: TestClient, passenger: dict) -> None:
    response = client.post("/predict", json={"observaton": passenger, "strict": "yes"})

    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"id", "observation", "observaton", "strict"}


def test_body_that_is_not_an_object_is_422(client: TestClient) -> None:
    response = client.post("/predict", json=[1, 2])
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body", "message": "must be a JSON object"}]


def test_bad_id_is_422(client: TestClient, passenger: dict) -> None:
    for bad in (None, 1.5, True, "", "x" * 300, 2**60, "tab\there"):
        response = client.post("/predict", json={"id": bad, "observation": passenger})
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"] == "id"


def test_batch_returns_one_record_per_item_in_order(client: TestClient, passenger: dict) -> None:
    items = [{"id": i, "observation": {**passenger, "Age": 10.0 * (i + 1)}} for i in range(3)]
    response = client.post("/predict", json={"observations": items})

    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["id"] for p in predictions] == [0, 1, 2]
    assert [p["observation"]["Age"] for p in predictions] == [10.0, 20.0, 30.0]
    assert all(set(p) == RECORD_FIELDS for p in predictions)
    assert_documented(client, "POST", "/predict", response)


def test_batch_with_bad_items_is_422_by_index_and_stores_nothing(make_client: MakeClient, passenger: dict) -> None:
    store = MemoryStore()
    client = make_client(store)
    items: list[Any] = [{"id": i, "observation": dict(passenger)} for i in range(5)]
    items[1]["observation"]["Age"] = "twenty"
    items[3]["id"] = None
    del items[4]["observation"]["Sex"]

    response = client.post("/predict", json={"observations": items})

    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["observations[1].observation.Age", "observations[3].id", "observations[4].observation.Sex"]
    assert store.list(10).items == []
    assert_documented(client, "POST", "/predict", response)


def test_batch_item_envelope_errors_name_the_index(client: TestClient, passenger: dict) -> None:
    items = [{"id": 1, "observation": passenger}, "nope", {"id": 3}, {"id": 4, "observation": passenger, "x": 1}]
    response = client.post("/predict", json={"observations": items})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [
        "observations[1]", "observations[2].observation", "observations[3].x",
    ]


def test_batch_repeating_an_id_with_the_same_observation_stores_it_once(client: TestClient, passenger: dict) -> None:
    items = [{"id": 5, "observation": passenger}, {"id": 5, "observation": passenger}]
    response = client.post("/predict", json={"observations": items})
    assert response.status_code == 200
    first, second = response.json()["predictions"]
    assert first == second
    assert [r["id"] for r in client.get("/predictions").json()["predictions"]] == [5]


def test_batch_repeating_an_id_with_another_observation_is_422(client: TestClient, passenger: dict) -> None:
    items = [{"id": 5, "observation": passenger}, {"id": 5, "observation": {**passenger, "Age": 30.0}}]
    response = client.post("/predict", json={"observations": items})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "observations[1].id"
    assert client.get("/predictions").json()["predictions"] == []


def test_batch_size_is_bounded_by_max_batch(make_client: MakeClient, passenger: dict) -> None:
    client = make_client(max_batch=2)
    items = [{"id": i, "observation": passenger} for i in range(3)]

    too_many = client.post("/predict", json={"observations": items})
    empty = client.post("/predict", json={"observations": []})

    assert too_many.status_code == empty.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "observations"
    document = client.get("/openapi.json").json()
    batch = document["components"]["schemas"]["BatchPredictRequest"]["properties"]["observations"]
    assert batch["maxItems"] == 2


def test_batch_conflicting_with_a_stored_id_is_409_and_stores_nothing_new(
    make_client: MakeClient, passenger: dict
) -> None:
    store = MemoryStore()
    client = make_client(store)
    client.post("/predict", json={"id": 2, "observation": passenger})
    items = [{"id": 1, "observation": passenger}, {"id": 2, "observation": {**passenger, "Age": 70}}]

    response = client.post("/predict", json={"observations": items})

    assert response.status_code == 409
    assert [r.id for r in store.list(10).items] == [2]
