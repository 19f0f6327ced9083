"""Every limit is enforced exactly where it is documented: the limit passes, one past it fails.

Body size (MAX_BODY_BYTES, by Content-Length and streamed), batch size (MAX_BATCH), JSON nesting
(32 levels), id length and range, listing page size, and the range of numbers in observations;
each is also stated in the OpenAPI document the app serves (and the configurable ones in the README).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.http.body import MAX_DEPTH
from adapters.settings import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT
from core.model import Model, default_model, load_model
from core.records import DEFAULT_MAX_STRING_LENGTH, MAX_ABS_INT_ID, MAX_ID_LENGTH, max_record_json_bytes
from core.schema import MAX_ABS_NUMBER
from core.service import MAX_LIST_LIMIT
from tests.helpers import README_PASSENGER, SteppingClock, app_client, serving_service
from tests.reliability.support import ROOT


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def make_client(model: Model, **settings: Any) -> TestClient:
    return app_client(serving_service(model, clock=SteppingClock(timedelta(0))), **settings)


def padded(body: dict[str, Any], size: int) -> bytes:
    """`body` as JSON, padded with trailing spaces to exactly `size` bytes."""
    data = json.dumps(body).encode()
    assert len(data) <= size
    return data + b" " * (size - len(data))


def chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def problem_type(response: Any) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text[:200]
    return str(response.json()["type"].rsplit("/", 1)[-1])


@pytest.mark.parametrize("limit", [DEFAULT_MAX_BODY_BYTES, 2048])
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_body_of_exactly_max_body_bytes_is_read_and_one_byte_more_is_413(
    model: Model, limit: int, streamed: bool
) -> None:
    client = make_client(model, **({} if limit == DEFAULT_MAX_BODY_BYTES else {"max_body_bytes": limit}))
    at_limit = padded({"id": 1, "observation": README_PASSENGER}, limit)
    over = padded({"id": 2, "observation": README_PASSENGER}, limit + 1)

    ok = client.post("/predict", content=chunks(at_limit) if streamed else at_limit)
    too_large = client.post("/predict", content=chunks(over) if streamed else over)

    assert ok.status_code == 200, ok.text[:300]
    assert too_large.status_code == 413
    assert problem_type(too_large) == "body-too-large"
    assert too_large.json()["max_body_bytes"] == limit
    assert client.get("/predictions/2").status_code == 404


@pytest.mark.parametrize("limit", [DEFAULT_MAX_BATCH, 3])
def test_a_batch_of_max_batch_items_is_stored_and_one_more_is_422_storing_nothing(model: Model, limit: int) -> None:
    client = make_client(model, **({} if limit == DEFAULT_MAX_BATCH else {"max_batch": limit}))

    def batch(first: int, size: int) -> dict[str, Any]:
        return {"observations": [{"id": first + n, "observation": README_PASSENGER} for n in range(size)]}

    ok = client.post("/predict", json=batch(0, limit))
    refused = client.post("/predict", json=batch(1000, limit + 1))

    assert ok.status_code == 200
    assert len(ok.json()["predictions"]) == limit
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"field": "observations", "message": f"must hold from 1 to {limit} items, not {limit + 1}"}
    ]
    assert client.get("/predictions/1000").status_code == 404


def nested(depth: int) -> Any:
    """A JSON value `depth` containers deep: [[...[]...]]."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_json_nested_exactly_32_levels_is_parsed_and_33_is_400(model: Model) -> None:
    client = make_client(model)
    # The body object is level 1 and the observation level 2, so Cabin's value holds the rest.
    at_limit = {"id": 1, "observation": {**README_PASSENGER, "Cabin": nested(MAX_DEPTH - 2)}}
    over = {"id": 1, "observation": {**README_PASSENGER, "Cabin": nested(MAX_DEPTH - 1)}}

    parsed = client.post("/predict", json=at_limit)
    refused = client.post("/predict", json=over)

    assert MAX_DEPTH == 32
    # Parsed, then refused by the schema: Cabin is a string, not a list.
    assert parsed.status_code == 422
    assert problem_type(parsed) == "validation"
    assert refused.status_code == 400
    assert problem_type(refused) == "malformed-request"
    assert "nested deeper than 32 levels" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("x" * MAX_ID_LENGTH, "x" * (MAX_ID_LENGTH + 1)),
        ("é" * MAX_ID_LENGTH, "é" * (MAX_ID_LENGTH + 1)),
        (MAX_ABS_INT_ID, MAX_ABS_INT_ID + 1),
        (-MAX_ABS_INT_ID, -MAX_ABS_INT_ID - 1),
    ],
    ids=["ascii-length", "unicode-length", "largest-int", "smallest-int"],
)
def test_an_id_at_its_limit_is_stored_and_one_past_it_is_422(model: Model, good: Any, bad: Any) -> None:
    client = make_client(model)

    ok = client.post("/predict", json={"id": good, "observation": README_PASSENGER})
    refused = client.post("/predict", json={"id": bad, "observation": README_PASSENGER})

    assert ok.status_code == 200
    assert ok.json()["id"] == good
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["id"]


def test_a_page_of_up_to_1000_predictions_may_be_asked_for_and_1001_is_422(model: Model) -> None:
    client = make_client(model)

    assert client.get(f"/predictions?limit={MAX_LIST_LIMIT}").status_code == 200
    assert client.get("/predictions?limit=1").status_code == 200
    for bad in (MAX_LIST_LIMIT + 1, 0):
        refused = client.get(f"/predictions?limit={bad}")
        assert refused.status_code == 422, bad
        assert refused.json()["errors"][0]["field"] == "limit"


@pytest.mark.parametrize("sign", [1, -1])
def test_numbers_up_to_1e15_in_magnitude_are_scored_and_the_next_float_is_422(model: Model, sign: int) -> None:
    client = make_client(model)
    # Age has no upper bound but cannot be negative; Fare the same: both are bounded by MAX_ABS_NUMBER.
    feature = "Fare" if sign > 0 else "Parch"
    just_over = float.__add__(MAX_ABS_NUMBER, 0.125)  # the next float above 1e15 (spacing is 0.125 there)
    assert just_over > MAX_ABS_NUMBER

    at_limit = client.post("/predict", json={"id": 1, "observation": {**README_PASSENGER, "Fare": MAX_ABS_NUMBER}})
    over = client.post("/predict", json={"id": 2, "observation": {**README_PASSENGER, feature: sign * just_over}})

    assert at_limit.status_code == 200, at_limit.text[:300]
    assert over.status_code == 422
    assert over.json()["errors"][0]["field"] == f"observation.{feature}"


def test_the_openapi_document_states_every_limit_the_app_enforces(model: Model) -> None:
    document = make_client(model, max_body_bytes=4096, max_batch=7).get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    description = document["info"]["description"]

    assert "at most 4096 bytes" in description
    assert f"nested at most {MAX_DEPTH} levels" in description
    assert schemas["BatchPredictRequest"]["properties"]["observations"]["maxItems"] == 7
    string_id, int_id = schemas["PredictionId"]["oneOf"][1], schemas["PredictionId"]["oneOf"][0]
    assert string_id["maxLength"] == MAX_ID_LENGTH
    assert (int_id["minimum"], int_id["maximum"]) == (-MAX_ABS_INT_ID, MAX_ABS_INT_ID)
    listing = document["paths"]["/predictions"]["get"]["parameters"]
    limit = next(p for p in listing if p.get("name") == "limit")
    assert limit["schema"]["maximum"] == MAX_LIST_LIMIT
    assert "413" in document["paths"]["/predict"]["post"]["responses"]


def test_the_documented_range_of_every_number_feature_is_the_range_the_core_accepts(model: Model) -> None:
    """Found by schemathesis: the document said any 64-bit float, the core refuses beyond 1e15."""
    client = make_client(model)
    features = client.get("/openapi.json").json()["components"]["schemas"]["Observation"]["properties"]
    for feature in model.schema.features:
        if feature.kind == "category":
            continue
        documented = features[feature.name]
        low = max(feature.minimum, -MAX_ABS_NUMBER) if feature.minimum is not None else -MAX_ABS_NUMBER
        high = min(feature.maximum, MAX_ABS_NUMBER) if feature.maximum is not None else MAX_ABS_NUMBER
        assert (documented["minimum"], documented["maximum"]) == (low, high), feature.name
        for value, accepted in ((documented["maximum"], True), (documented["minimum"], True)):
            response = client.post("/predict", json={"id": f"{feature.name}-{value}",
                                                     "observation": {**README_PASSENGER, feature.name: value}})
            assert (response.status_code == 200) is accepted, (feature.name, value, response.text[:300])


def test_the_readme_documents_the_configurable_limits() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    assert f"`MAX_BODY_BYTES` | `{DEFAULT_MAX_BODY_BYTES}`" in readme
    assert f"`MAX_BATCH` | `{DEFAULT_MAX_BATCH}`" in readme
    assert f"`MAX_STRING_LENGTH` | `{DEFAULT_MAX_STRING_LENGTH}`" in readme
    assert f"`REQUEST_TIMEOUT` | `{DEFAULT_REQUEST_TIMEOUT}`" in readme
    shipped = max_record_json_bytes(default_model().schema.names, DEFAULT_MAX_STRING_LENGTH)
    assert f"{shipped:,} bytes" in readme
    assert "`413` body too large" in readme
