from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from core import InvalidObservation, Prediction, load_model, predict, predict_each, predict_many
from core.model import Model
from tests.core.fitting import GOOD, make_table
from tests.helpers import README_PASSENGER


def rows(n: int = 60) -> list[dict]:
    table = make_table(n, seed=7).drop(columns=["y"])
    records = json.loads(table.to_json(orient="records"))
    return [{k: (int(v) if k == "Pclass" else v) for k, v in r.items()} for r in records]


def test_predict_returns_a_frozen_prediction_consistent_with_its_threshold(tiny_model: Model) -> None:
    p = predict(GOOD, model=tiny_model)
    assert isinstance(p, Prediction)
    assert p.predicted_class == (p.proba >= p.threshold) and isinstance(p.predicted_class, bool)
    assert p.model_version == tiny_model.version and len(p.model_version) == 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.proba = 0.0  # type: ignore[misc]


def test_the_threshold_decides_the_class(tiny_dir: Path, tmp_path: Path) -> None:
    model = load_model(tiny_dir)
    p = predict(GOOD, model=model)
    shifted = dataclasses.replace(model, threshold=p.proba)
    assert predict(GOOD, model=shifted).predicted_class is True
    shifted = dataclasses.replace(model, threshold=min(1.0, p.proba + 1e-9))
    assert predict(GOOD, model=shifted).predicted_class is False


def test_the_fast_form_gives_scikit_learns_answers(tiny_dir: Path) -> None:
    fast, slow = load_model(tiny_dir, engine="fast"), load_model(tiny_dir, engine="sklearn")
    assert (fast.engine, slow.engine) == ("fast", "sklearn")
    observations = rows() + [{**GOOD, "Port": None, "Age": None}, {**GOOD, "Sex": "unknown"}]
    for observation in observations:
        assert predict(observation, model=fast).proba == pytest.approx(
            predict(observation, model=slow).proba, abs=1e-12
        )


@pytest.mark.parametrize("engine", ["fast", "sklearn"])
def test_predict_many_matches_one_by_one(tiny_dir: Path, engine: str) -> None:
    model = load_model(tiny_dir, engine=engine)
    observations = rows()
    many = predict_many(observations, model=model)
    assert [p.proba for p in many] == pytest.approx([predict(o, model=model).proba for o in observations], abs=1e-12)


def test_predict_many_names_each_bad_item_by_index_and_scores_none(tiny_model: Model) -> None:
    with pytest.raises(InvalidObservation) as info:
        predict_many([GOOD, {**GOOD, "Age": "x"}, 5], model=tiny_model)
    assert [e.field for e in info.value.errors] == ["1.Age", "2"]


def test_a_pipeline_that_cannot_be_compiled_is_served_by_scikit_learn(sklearn_dir: Path) -> None:
    model = load_model(sklearn_dir)
    assert model.engine == "sklearn"
    assert model.manifest["fast_sha256"] is None
    assert model.manifest["fast_reason"].startswith("scikit-learn: no fast form, step 'columntransformer'")
    assert "QuantileTransformer has no fast form" in model.manifest["fast_reason"]
    p = predict({**GOOD, "Port": "Atlantis"}, model=model)
    assert 0.0 <= p.proba <= 1.0 and p.warnings
    with pytest.raises(Exception, match="no fast form"):
        load_model(sklearn_dir, engine="fast")


def test_predict_does_no_io(tiny_model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("predict opened a file")

    monkeypatch.setattr(builtins, "open", no_open)
    monkeypatch.setattr(Path, "read_text", no_open)
    assert 0.0 < predict(GOOD, model=tiny_model).proba < 1.0


def test_predict_reads_no_clock_and_no_environment(tiny_model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    expected = predict(GOOD, model=tiny_model)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("predict read the clock or the environment")

    class NoEnvironment(dict):  # type: ignore[type-arg]
        __getitem__ = get = __contains__ = __iter__ = forbidden  # type: ignore[assignment]

    for name in ("time", "time_ns", "monotonic", "perf_counter", "localtime", "gmtime"):
        monkeypatch.setattr(time, name, forbidden)
    monkeypatch.setattr(os, "environ", NoEnvironment())
    monkeypatch.setattr(os, "getenv", forbidden)
    assert predict(GOOD, model=tiny_model) == expected
    assert predict_many([GOOD, GOOD], model=tiny_model) == [expected, expected]


def test_the_default_model_is_loaded_once_and_shared(monkeypatch: pytest.MonkeyPatch, passenger: dict) -> None:
    import core.model

    loads: list[object] = []
    real_load = core.model.load_model
    monkeypatch.setattr(core.model, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    core.model.default_model.cache_clear()
    try:
        first, second = predict(passenger), predict({**passenger, "Age": 40.0})
        assert len(loads) == 1
        assert first.model_version == second.model_version == core.model.default_model().version
        assert core.model.default_model() is core.model.default_model() and len(loads) == 1
    finally:
        core.model.default_model.cache_clear()  # the next user loads the real one again


def test_batch_warnings_name_the_feature_not_the_item(tiny_model: Model) -> None:
    second = predict_many([GOOD, {**GOOD, "Port": "Atlantis"}], model=tiny_model)[1]
    assert second.warnings == ("Port: category 'Atlantis' was not seen in training",)


def test_predict_each_answers_every_item_in_order_and_a_bad_one_stops_nothing() -> None:
    good = dict(README_PASSENGER)
    other = {**good, "Sex": "female", "Pclass": 1}
    answers = predict_each([good, {**good, "Age": "old"}, other, "not an object"])

    assert [type(a).__name__ for a in answers] == ["Prediction", "InvalidObservation", "Prediction",
                                                   "InvalidObservation"]
    assert answers[0] == predict(good) and answers[2] == predict(other)
    assert isinstance(answers[1], InvalidObservation) and [e.field for e in answers[1].errors] == ["Age"]
    assert predict_each([]) == []


def test_a_prediction_made_quickly_is_the_same_frozen_prediction() -> None:
    import dataclasses

    from core.predict import Prediction

    fields = {"proba": 0.25, "predicted_class": False, "threshold": 0.5, "model_version": "v", "warnings": ("w",)}
    made, constructed = Prediction.made(**fields), Prediction(**fields)
    assert made == constructed and hash(made) == hash(constructed) and repr(made) == repr(constructed)
    assert dataclasses.asdict(made) == fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.proba = 1.0  # type: ignore[misc]
