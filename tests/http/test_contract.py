"""The request contract is declared once: what the app accepts is what its document says."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from adapters.http.contract import Array, Boolean, Documented, Field, Object, components
from tests.helpers import README_PASSENGER, MakeClient

MAX_BATCH = 2
IDS = st.integers(-3, 3) | st.sampled_from(["a", "b"])
# Values a client might put anywhere: right in one place, wrong in another.
ANYTHING = st.sampled_from([True, "yes", None, [], 1.5, {}]) | IDS | st.just(README_PASSENGER)
VALID_ITEM = st.fixed_dictionaries({"id": IDS, "observation": st.just(README_PASSENGER)})
ITEM = VALID_ITEM | st.dictionaries(st.sampled_from(["id", "observation", "extra"]), ANYTHING) | ANYTHING
# An observation with a key that is not a feature: a warning, or an error with strict: true.
WITH_EXTRA = {**README_PASSENGER, "Name": "x"}
# Items whose observations differ have different ids: the same id with another observation is
# a conflict, which no schema can say.
VARIED_ITEMS = st.lists(
    st.fixed_dictionaries({"id": IDS, "observation": st.sampled_from([README_PASSENGER, WITH_EXTRA])}),
    min_size=1, max_size=MAX_BATCH, unique_by=lambda item: json.dumps(item["id"]),
)
BODIES = (
    st.dictionaries(st.sampled_from(["id", "observation", "observations", "strict", "extra"]),
                    ANYTHING | st.lists(ITEM, max_size=MAX_BATCH + 1))
    | st.fixed_dictionaries({"id": IDS, "observation": st.just(README_PASSENGER)}, optional={"strict": ANYTHING})
    | st.fixed_dictionaries({"id": IDS, "observation": st.just(WITH_EXTRA)}, optional={"strict": st.booleans()})
    | st.fixed_dictionaries({"observations": st.lists(ITEM, max_size=MAX_BATCH + 1)}, optional={"strict": ANYTHING})
    | st.fixed_dictionaries({"observations": st.lists(VALID_ITEM, max_size=MAX_BATCH + 1)})
    | st.fixed_dictionaries({"observations": VARIED_ITEMS}, optional={"strict": st.booleans()})
    | ANYTHING
)


class Document:
    """The app's own document's schema of POST /predict's body, and fresh apps to send bodies to."""

    def __init__(self, make_client: MakeClient) -> None:
        self.make_client = make_client
        document = make_client(max_batch=MAX_BATCH).get("/openapi.json").json()
        registry = Registry().with_resource("urn:doc",
                                            Resource.from_contents(document, default_specification=DRAFT202012))
        self.validator = jsonschema.Draft202012Validator({"$ref": "urn:doc#/components/schemas/PredictRequest"},
                                                         registry=registry)

    def __repr__(self) -> str:
        return "Document()"


@pytest.fixture
def document(make_client: MakeClient) -> Document:
    return Document(make_client)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_the_app_accepts_a_prediction_request_exactly_when_its_document_does(document: Document, body: Any) -> None:
    # A fresh app for each body: an id stored by an earlier body is not a conflict here.
    client = document.make_client(max_batch=MAX_BATCH)
    response = client.post("/predict", content=json.dumps(body), headers={"Content-Type": "application/json"})

    assert response.status_code in (200, 422), response.text
    documented = document.validator.is_valid(body)
    assert (response.status_code == 200) is documented, (body, response.text, documented)


def test_an_object_names_every_missing_unknown_and_bad_field_under_its_prefix() -> None:
    shape = Object({"id": Field(Documented({})), "flag": Field(Boolean(False, "a flag"), required=False)})

    errors = shape.problems({"flag": "yes", "other": 1}, "items[2]")

    assert {(e.field, e.message) for e in errors} == {
        ("items[2].id", "is required"),
        ("items[2].other", "is not a field of this request (expected id, flag)"),
        ("items[2].flag", "must be true or false"),
    }
    assert shape.problems([], "") == [type(errors[0])("body", "must be a JSON object")]
    assert shape.problems({"id": 1}, "") == []


def test_an_array_states_its_bounds_and_names_its_items() -> None:
    item = Object({"id": Field(Documented({}))})
    shape = Array(item, min_items=1, max_items=2, item_field=lambda i: f"rows[{i}]")

    assert [e.message for e in shape.problems([], "rows")] == ["must hold from 1 to 2 items, not 0"]
    assert [e.message for e in shape.problems({}, "rows")] == ["must be an array of {id} objects"]
    assert [e.field for e in shape.problems([{"id": 1}, {}], "rows")] == ["rows[1].id"]
    assert [e.field for e in Array(item).problems([{}], "all")] == ["all[0].id"]
    assert shape.definition() == {"type": "array", "items": item.definition(), "minItems": 1, "maxItems": 2}


def test_the_components_are_every_named_shape_once_and_a_name_means_one_shape() -> None:
    inner = Documented({"type": "integer"}, name="Inner")
    outer = Object({"a": Field(inner), "b": Field(Array(inner))}, name="Outer")

    found = components(outer, inner)

    assert list(found) == ["Outer", "Inner"]
    assert found["Outer"]["properties"]["b"] == {"type": "array", "items": {"$ref": "#/components/schemas/Inner"}}
    with pytest.raises(ValueError, match="Inner"):
        components(outer, Documented({"type": "string"}, name="Inner"))
