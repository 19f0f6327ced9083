"""Property: nothing a client sends makes the app answer 5xx, and every answer is documented."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from core.model import Model
from tests.helpers import app_client, serving_service
from tests.http.support import assert_documented

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Cabin", "Embarked"]
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | st.sampled_from(["male", "female", "S", "C", "B5", ""])
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
ids = st.integers() | st.text(max_size=12) | json_values
observations = st.fixed_dictionaries({}, optional={name: scalars for name in FEATURES}) | json_values
single = st.fixed_dictionaries({"id": ids, "observation": observations}, optional={"strict": json_values})
batch = st.fixed_dictionaries(
    {"observations": st.lists(st.fixed_dictionaries({"id": ids, "observation": observations}), max_size=4)
     | json_values},
    optional={"strict": st.booleans()},
)
update = st.fixed_dictionaries({"id": ids, "true_class": json_values}) | json_values
raw_bodies = st.binary(max_size=64) | st.text(max_size=64).map(str.encode)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzzed(model: Model) -> TestClient:
    """One app for all examples: what earlier examples stored makes later ones meet conflicts and retries."""
    return app_client(serving_service(model), max_batch=3)


def post(client: TestClient, path: str, body: Any) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    assert_documented(client, "POST", path, response)


@FUZZ
@given(body=single | batch | json_values | raw_bodies)
def test_predict_never_fails_on_the_servers_side(fuzzed: TestClient, body: Any) -> None:
    post(fuzzed, "/predict", body)


@FUZZ
@given(body=update | raw_bodies)
def test_update_never_fails_on_the_servers_side(fuzzed: TestClient, body: Any) -> None:
    post(fuzzed, "/update", body)


@FUZZ
@given(prediction_id=st.text(max_size=30), limit=st.text(max_size=6), cursor=st.text(max_size=30))
def test_reads_never_fail_on_the_servers_side(
    fuzzed: TestClient, prediction_id: str, limit: str, cursor: str
) -> None:
    client = fuzzed
    for path, template, params in [
        ("/predictions/" + quote(prediction_id, safe=""), "/predictions/{id}", {}),
        ("/predictions", "/predictions", {"limit": limit, "cursor": cursor}),
    ]:
        response = client.get(path, params=params)
        if response.request.url.path != unquote(path):
            continue  # the client resolved a dot segment ("." or "..") into another route
        if response.status_code == 404 and response.json()["type"].endswith("/not-found"):
            continue  # the client normalised the path into another route (e.g. "..")
        assert response.status_code < 500, response.text
        assert_documented(client, "GET", template, response)
