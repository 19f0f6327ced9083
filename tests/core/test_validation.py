from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidObservation
from core.model import Model
from core.predict import predict
from tests.core.fitting import GOOD


def problems(model: Model, observation: Any, strict: bool = False) -> dict[str, str]:
    with pytest.raises(InvalidObservation) as info:
        predict(observation, model=model, strict=strict)
    return {e.field: e.message for e in info.value.errors}


@pytest.mark.parametrize("observation", [None, [], "Age", 3, [GOOD]])
def test_an_observation_that_is_not_an_object_is_rejected(tiny_model: Model, observation: Any) -> None:
    found = problems(tiny_model, observation)
    assert list(found) == ["observation"] and found["observation"].startswith("must be an object, got ")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Age", "22", "must be a number, got string"),
        ("Age", True, "must be a number, got boolean"),
        ("Fare", float("nan"), "must be a finite number"),
        ("Fare", float("inf"), "must be a finite number"),
        ("Fare", -1.0, "must be at least 0.0"),
        ("Pclass", 2.5, "must be a whole number"),
        ("Sex", 1, "must be a string, got number"),
        ("Sex", ["male"], "must be a string, got array"),
        ("Port", {"a": 1}, "must be a string, got object"),
    ],
)
def test_a_bad_value_is_named_with_its_field(tiny_model: Model, field: str, value: Any, message: str) -> None:
    assert problems(tiny_model, {**GOOD, field: value}) == {field: message}


def test_every_problem_is_reported_at_once(tiny_model: Model) -> None:
    observation = {"Age": "old", "Fare": float("inf"), "Sex": 3}
    assert problems(tiny_model, observation) == {
        "Age": "must be a number, got string",
        "Fare": "must be a finite number",
        "Pclass": "is required",
        "Sex": "must be a string, got number",
        "Port": "is required",
    }


def test_null_is_accepted_where_the_pipeline_imputes(tiny_model: Model) -> None:
    nullable = {f.name for f in tiny_model.schema.features if f.nullable}
    assert {"Age", "Port", "Sex", "Fare"} <= nullable
    prediction = predict({**GOOD, "Age": None, "Port": None, "Fare": None}, model=tiny_model)
    assert 0.0 < prediction.proba < 1.0


def test_extra_keys_are_ignored_with_a_warning_and_rejected_when_strict(tiny_model: Model) -> None:
    prediction = predict({**GOOD, "Name": "Smith"}, model=tiny_model)
    assert prediction.proba == predict(GOOD, model=tiny_model).proba
    assert any("Name" in w for w in prediction.warnings)
    assert problems(tiny_model, {**GOOD, "Name": "Smith"}, strict=True) == {"Name": "is not a feature of this model"}


def test_an_unseen_category_is_scored_and_reported(tiny_model: Model) -> None:
    prediction = predict({**GOOD, "Port": "Atlantis"}, model=tiny_model)
    assert 0.0 < prediction.proba < 1.0
    assert prediction.warnings == ("Port: category 'Atlantis' was not seen in training",)


def test_a_value_outside_the_training_range_is_scored_and_reported(tiny_model: Model) -> None:
    prediction = predict({**GOOD, "Age": 120.0}, model=tiny_model)
    assert len(prediction.warnings) == 1 and "outside the training range" in prediction.warnings[0]


def test_integers_are_accepted_for_numbers_and_whole_floats_for_integers(tiny_model: Model) -> None:
    a = predict({**GOOD, "Age": 30, "Pclass": 2.0}, model=tiny_model)
    b = predict(GOOD, model=tiny_model)
    assert a.proba == b.proba


def test_null_is_refused_where_the_schema_says_so() -> None:
    from core.schema import Feature, Schema

    schema = Schema((Feature(name="n", kind="integer", dtype="int64", nullable=False),))
    with pytest.raises(InvalidObservation) as info:
        schema.validate({"n": None})
    assert [e.as_dict() for e in info.value.errors] == [{"field": "n", "message": "must not be null"}]


@pytest.mark.parametrize("value", [10**400, -(10**16), 1e300])
def test_a_number_too_large_to_be_a_measurement_is_rejected(tiny_model: Model, value: Any) -> None:
    assert problems(tiny_model, {**GOOD, "Fare": value}) == {"Fare": "must be between -1e+15 and 1e+15"}
