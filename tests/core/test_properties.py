"""Property: predict raises nothing but InvalidObservation, whatever JSON-like input it gets."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core import InvalidObservation, default_model, predict

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
feature_names = default_model().schema.names
observations_like = st.fixed_dictionaries({}, optional={name: json_values for name in feature_names})


def score_or_reject(observation: Any) -> None:
    try:
        p = predict(observation)
    except InvalidObservation as e:
        assert e.errors and all(err.field and err.message for err in e.errors)
        return
    assert 0.0 <= p.proba <= 1.0 and p.predicted_class == (p.proba >= p.threshold)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_predict_never_raises_anything_else_for_arbitrary_json(value: Any) -> None:
    score_or_reject(value)


@settings(max_examples=500, deadline=None)
@given(observations_like, st.dictionaries(st.text(max_size=8), json_values, max_size=2))
def test_predict_never_raises_anything_else_for_near_valid_observations(observation: dict, extra: dict) -> None:
    score_or_reject({**extra, **observation})
