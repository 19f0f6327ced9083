"""Bounded records: every string of an observation has a documented most length (MAX_STRING_LENGTH),
an observation at most MAX_EXTRA_KEYS keys besides its features, so a page has a known most size."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from adapters.storage.memory import MemoryStore
from core.model import Model
from core.records import DEFAULT_MAX_STRING_LENGTH, MAX_EXTRA_KEYS, max_record_json_bytes
from tests.helpers import MakeClient

LONG = "x" * (DEFAULT_MAX_STRING_LENGTH + 1)


def errors_of(response: object) -> dict[str, str]:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    return {e["field"]: e["message"] for e in response.json()["errors"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Sex": LONG}, "observation.Sex"),
        ({"Embarked": LONG, "Sex": LONG}, "observation.Embarked"),
        ({"note": LONG}, "observation.note"),
        ({LONG: 1}, "observation"),
        ({"nested": {"a": 1}}, "observation.nested"),
        ({"listed": [1, 2]}, "observation.listed"),
        ({f"extra{k}": k for k in range(MAX_EXTRA_KEYS + 1)}, "observation"),
    ],
)
def test_an_observation_too_big_to_store_is_422_naming_the_field_and_nothing_is_stored(
    make_client: MakeClient, passenger: dict, change: dict, field: str
) -> None:
    store = MemoryStore()
    client = make_client(store=store)

    found = errors_of(client.post("/predict", json={"id": 1, "observation": {**passenger, **change}}))

    assert field in found
    assert store.list(10).items == []


def test_a_batch_names_the_item_whose_string_is_too_long_and_stores_nothing(
    make_client: MakeClient, passenger: dict
) -> None:
    store = MemoryStore()
    client = make_client(store=store)
    batch = {"observations": [{"id": 1, "observation": passenger},
                              {"id": 2, "observation": {**passenger, "Sex": LONG}}]}

    found = errors_of(client.post("/predict", json=batch))

    assert found == {"observations[1].observation.Sex": f"must be at most {DEFAULT_MAX_STRING_LENGTH} characters, "
                                                         f"got {len(LONG)}"}
    assert store.list(10).items == []


def test_strings_up_to_the_limit_and_extra_keys_up_to_theirs_are_accepted(client: TestClient, passenger: dict) -> None:
    at_limit = "y" * DEFAULT_MAX_STRING_LENGTH
    extras = {f"k{n}": at_limit for n in range(MAX_EXTRA_KEYS)}
    response = client.post("/predict", json={"id": 1, "observation": {**passenger, "Sex": at_limit, **extras}})
    assert response.status_code == 200, response.text
    assert any("category 'yyyy" in w and w.count("y") <= 70 for w in response.json()["warnings"])  # quoted, cut


def test_a_long_string_where_a_number_belongs_is_one_error(client: TestClient, passenger: dict) -> None:
    found = errors_of(client.post("/predict", json={"id": 1, "observation": {**passenger, "Age": LONG}}))
    assert found == {"observation.Age": "must be a number, got string"}


def test_the_limit_is_a_setting(make_client: MakeClient, passenger: dict) -> None:
    client = make_client(max_string_length=3)
    assert "observation.Sex" in errors_of(client.post("/predict", json={"id": 1, "observation": passenger}))
    assert client.post("/predict", json={"id": 1, "observation": {**passenger, "Sex": "m"}}).status_code == 200
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Observation"]
    assert schema["properties"]["Sex"]["maxLength"] == 3 and schema["propertyNames"]["maxLength"] == 3


def test_a_page_of_the_largest_records_stays_within_the_documented_bound(
    make_client: MakeClient, model: Model
) -> None:
    """The worst case: every string at the limit, of characters JSON escapes to 6 bytes."""
    worst = "\u0001" * DEFAULT_MAX_STRING_LENGTH
    client = make_client()
    observation = {f.name: (worst if f.kind == "category" else None) for f in model.schema.features}
    extra_key = "\u0002" * (DEFAULT_MAX_STRING_LENGTH - 2)
    observation.update({extra_key + f"{n:02d}": worst for n in range(MAX_EXTRA_KEYS)})
    for start in range(0, 100, 20):
        batch = [{"id": "\U0001f600" * 250 + f"{k:06d}", "observation": observation} for k in range(start, start + 20)]
        assert client.post("/predict", json={"observations": batch}).status_code == 200

    page = client.get("/predictions", params={"limit": 100})

    assert page.status_code == 200 and len(page.json()["predictions"]) == 100
    bound = max_record_json_bytes(model.schema.names, DEFAULT_MAX_STRING_LENGTH)
    assert len(page.content) <= 100 * bound + 100
    # and the bound is not loose by orders of magnitude: the worst case comes within a factor of 2
    assert len(page.content) >= 100 * bound / 2, (len(page.content), 100 * bound)
    assert json.loads(page.content)["predictions"][0]["observation"] == observation
