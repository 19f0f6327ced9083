"""Challengers (shadow models) scored beside the champion, and what their scores add to the counters.

Every stored prediction carries each challenger's score of the same observation (a
`ShadowScore`: a probability, or why there is none). Their counters go into the champion's
aggregate rows, in the same write, under two prefixes, so that no store needs to know about
challengers:
- `s|<tag>|<counter>`: the challenger's own counters, named as core.quality names the
  champion's (predictions and outcomes; no drift, as for any version not serving), over the
  records it scored (`tag`: the start of its version);
- `p|<tag>|<counter>`: core.comparison's paired counters, over the records labelled and
  scored by both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core import comparison, quality
from core.errors import InvalidObservation
from core.model import Model
from core.predict import Prediction, predict, predict_each
from core.records import PredictionRecord, ShadowScore

MAX_SHADOWS = 3
TAG_LENGTH = 16
OWN = "s|"
PAIRED = "p|"


def scores(models: Sequence[Model], observations: Sequence[Any]) -> list[tuple[ShadowScore, ...]]:
    """Each observation's scores by every challenger, in order. Never raises: an observation a
    challenger cannot score (a feature it needs is missing, its scorer failed) gets the reason."""
    if not models:
        return [()] * len(observations)
    per_model = [_scored_by(model, observations) for model in models]
    return list(zip(*per_model))


def _scored_by(model: Model, observations: Sequence[Any]) -> list[ShadowScore]:
    try:
        answers = _answers(model, observations)
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


def _answers(model: Model, observations: Sequence[Any]) -> Sequence[Prediction | InvalidObservation]:
    if len(observations) != 1:
        return predict_each(observations, model)
    try:  # one observation, the common request: predict's path is the shorter
        return [predict(observations[0], model)]
    except InvalidObservation as e:
        return [e]


def prediction_counters(record: PredictionRecord) -> quality.Counters:
    """What the challengers' scores of a new record add, by prefix (see the module docstring).

    No drift counters: drift compares the traffic with the training data of the version that
    serves it (a challenger serves none), and each would be one more counter per record in
    every store's write.
    """
    counters: quality.Counters = {}
    for shadow in record.shadows:
        if shadow.proba is not None:
            own = quality.prediction_increments(None, record.observation, shadow.proba, bool(shadow.predicted_class))
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
    """The counters under `prefix` (OWN or PAIRED), per challenger tag, prefix removed."""
    found: dict[str, quality.Counters] = {}
    for name, value in counters.items():
        if name.startswith(prefix):
            version, _, counter = name[len(prefix):].partition("|")
            found.setdefault(version, {})[counter] = value
    return found


def champion_only(counters: Mapping[str, float]) -> quality.Counters:
    return {name: value for name, value in counters.items() if not name.startswith((OWN, PAIRED))}


def _prefixed(prefix: str, version: str, counters: Mapping[str, float]) -> dict[str, float]:
    return {_name(prefix, version, name): value for name, value in counters.items()}


# The prefixed names made so far: a few thousand strings per challenger at most (every counter
# name core.quality and core.comparison make), built once instead of at every request.
_NAMES: dict[tuple[str, str, str], str] = {}


def _name(prefix: str, version: str, counter: str) -> str:
    key = (prefix, version, counter)
    name = _NAMES.get(key)
    if name is None:
        name = _NAMES[key] = f"{prefix}{tag(version)}|{counter}"
    return name


def tag(version: str) -> str:
    """How counter names call a challenger: its version's first TAG_LENGTH characters (64 bits
    of a sha256), so that names stay short where a store keeps thousands in one item (DynamoDB)."""
    return version[:TAG_LENGTH]


def named(tags: Iterable[str], versions: Iterable[str]) -> dict[str, str]:
    """Each tag of `tags` -> the full version among `versions` it abbreviates (else the tag itself)."""
    full = {tag(version): version for version in versions}
    return {t: full.get(t, t) for t in tags}
