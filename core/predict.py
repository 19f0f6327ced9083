"""The pure prediction function: one observation in, one Prediction out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import FieldError, InvalidObservation
from core.model import Model, default_model


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one observation.

    `proba` is the probability of the positive class; `predicted_class` is `proba >= threshold`;
    `model_version` is the sha256 of the artifact's model file; `warnings` name anything
    accepted but unusual (an unseen category, a value outside the training range, an extra key).
    """

    proba: float
    predicted_class: bool
    threshold: float
    model_version: str
    warnings: tuple[str, ...] = ()


def predict(observation: Any, model: Model | None = None, strict: bool = False) -> Prediction:
    """Score one observation (a dict of feature name to JSON value).

    Pure: no I/O, clock or environment; the default model is loaded once on first use. Raises
    InvalidObservation listing every problem; with `strict`, unknown keys are problems too.
    """
    model = model or default_model()
    values, warnings = model.schema.validate(observation, strict=strict)
    return _prediction(model, model.scorer.proba(values), warnings)


def predict_many(observations: Sequence[Any], model: Model | None = None, strict: bool = False) -> list[Prediction]:
    """Score many observations in one call, with the same answers as `predict` one by one.

    Validates all of them first: InvalidObservation names every problem of every bad item, its
    field prefixed by the item's index (`3.Age`), and nothing is scored.
    """
    model = model or default_model()
    rows: list[list[Any]] = []
    all_warnings: list[list[str]] = []
    errors: list[FieldError] = []
    for index, observation in enumerate(observations):
        try:
            values, warnings = model.schema.validate(observation, strict=strict, field_prefix=f"{index}.")
        except InvalidObservation as e:
            errors.extend(e.errors)
            continue
        rows.append(values)
        all_warnings.append(warnings)
    if errors:
        raise InvalidObservation(errors)
    probas = model.scorer.proba_many(rows)
    return [_prediction(model, p, w) for p, w in zip(probas, all_warnings)]


def predict_each(observations: Sequence[Any], model: Model | None = None) -> list[Prediction | InvalidObservation]:
    """Score many observations, each on its own: a Prediction for each good one, the
    InvalidObservation saying why for each bad one, in order. The good ones are scored in one
    call, so their answers are `predict_many`'s; a bad one never stops the others."""
    model = model or default_model()
    results: list[Prediction | InvalidObservation] = []
    rows: list[list[Any]] = []
    all_warnings: list[list[str]] = []
    for observation in observations:
        try:
            values, warnings = model.schema.validate(observation)
        except InvalidObservation as e:
            results.append(e)
            continue
        results.append(_PENDING)
        rows.append(values)
        all_warnings.append(warnings)
    scored = iter(_prediction(model, p, w) for p, w in zip(model.scorer.proba_many(rows), all_warnings))
    return [next(scored) if r is _PENDING else r for r in results]


def _prediction(model: Model, proba: float, warnings: list[str]) -> Prediction:
    return Prediction(
        proba=proba,
        predicted_class=proba >= model.threshold,
        threshold=model.threshold,
        model_version=model.version,
        warnings=tuple(warnings),
    )


# Where predict_each's scored answers go, until the good rows have been scored together.
_PENDING: Any = object()
