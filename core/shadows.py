"""Challengers (shadow models) scored beside the champion, and what their scores add to the counters.

Every stored prediction carries each challenger's score of the same observation (a
`ShadowScore`: a probability, or why there is none). Their counters go into the champion's
aggregate rows, in the same write, under two prefixes, so that no store needs to know about
challengers:
- `s|<version>|<counter>`: the challenger's own counters, named as core.quality names the
  champion's (predictions, outcomes, drift), over the records it scored;
- `p|<version>|<counter>`: core.comparison's paired counters, over the records labelled and
  scored by both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core import comparison, quality
from core.errors import InvalidObservation
from core.model import Model
from core.predict import predict_each
from core.records import PredictionRecord, ShadowScore

MAX_SHADOWS = 3
OWN = "s|"
PAIRED = "p|"


def scores(models: Sequence[Model], observations: Sequence[Any]) -> list[tuple[ShadowScore, ...]]:
    """Each observation's scores by every challenger, in order. Never raises: an observation a
    challenger cannot score (a feature it needs is missing, its scorer failed) gets the reason."""
    per_model = [_scored_by(model, observations) for model in models]
    return [tuple(column) for column in zip(*per_model)] if per_model else [() for _ in observations]


def _scored_by(model: Model, observations: Sequence[Any]) -> list[ShadowScore]:
    try:
        answers = predict_each(observations, model)
    except Exception as e:  # noqa: BLE001 - a challenger never changes the champion's answer
        return [ShadowScore(model.version, problem=f"could not score: {type(e).__name__}: {e}"[:300])] * len(
            observations
        )
    return [
        ShadowScore(model.version, problem="; ".join(f"{error.field} {error.message}" for error in a.errors)[:300])
        if isinstance(a, InvalidObservation)
        else ShadowScore(model.version, a.proba, a.predicted_class)
        for a in answers
    ]


def prediction_counters(models: Mapping[str, Model], record: PredictionRecord) -> quality.Counters:
    """What the challengers' scores of a new record add, by prefix (see the module docstring);
    drift only for the challengers in `models` (by version), whose training data is known."""
    counters: quality.Counters = {}
    for shadow in record.shadows:
        if shadow.proba is None:
            continue
        model = models.get(shadow.model_version)
        predicted = bool(shadow.predicted_class)
        schema = model.schema if model else None
        own = quality.prediction_increments(schema, record.observation, shadow.proba, predicted)
        counters.update(_prefixed(OWN, shadow.model_version, own))
    return counters


def outcome_counters(record: PredictionRecord, true_class: int) -> quality.Counters:
    """core.quality.outcome_counters, and what the outcome adds for each challenger that scored the record."""
    counters = quality.outcome_counters(record, true_class)
    for shadow in record.shadows:
        if shadow.proba is None:
            continue
        challenger = bool(shadow.predicted_class)
        own = quality.outcome_increments(shadow.proba, challenger, record.true_class, true_class)
        paired = comparison.paired_outcome_increments(
            record.proba, record.predicted_class, shadow.proba, challenger, record.true_class, true_class
        )
        counters.update(_prefixed(OWN, shadow.model_version, own))
        counters.update(_prefixed(PAIRED, shadow.model_version, paired))
    return counters


def split(counters: Mapping[str, float], prefix: str) -> dict[str, quality.Counters]:
    """The counters under `prefix` (OWN or PAIRED), per challenger version, prefix removed."""
    found: dict[str, quality.Counters] = {}
    for name, value in counters.items():
        if name.startswith(prefix):
            version, _, counter = name[len(prefix):].partition("|")
            found.setdefault(version, {})[counter] = value
    return found


def champion_only(counters: Mapping[str, float]) -> quality.Counters:
    return {name: value for name, value in counters.items() if not name.startswith((OWN, PAIRED))}


def _prefixed(prefix: str, version: str, counters: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}{version}|{name}": value for name, value in counters.items()}
