"""What the core hands to stores and gets back: prediction ids, new and stored records, pages."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

from core.errors import FieldError, InvalidRequest
from core.schema import WARNING_QUOTE

PredictionId = int | str

MAX_ID_LENGTH = 256
# What a stored observation may hold (observation_problems): its size bounds a page of records.
DEFAULT_MAX_STRING_LENGTH = 256
MAX_EXTRA_KEYS = 8
# Ids travel through JSON and DynamoDB numbers; keep them exact in both.
MAX_ABS_INT_ID = 2**53 - 1
# Built once: `json.dumps` with options builds an encoder per call (4 µs), and every write
# encodes an id and an observation.
_ID_JSON = json.JSONEncoder(ensure_ascii=False)
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def normalized_id(value: Any) -> Any:
    """A whole-number float is the integer id it names: JSON does not tell 1 from 1.0."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_ABS_INT_ID:
        return int(value)
    return value


def id_problem(value: Any) -> str | None:
    """Why `value` cannot be a prediction id, or None when it can (see `normalized_id`)."""
    value = normalized_id(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return "must be an integer or a string"
    if isinstance(value, int):
        if abs(value) > MAX_ABS_INT_ID:
            return f"must be between -{MAX_ABS_INT_ID} and {MAX_ABS_INT_ID}"
        return None
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "must not contain control characters"
    return None


def observation_problems(
    observation: Any,
    features: Collection[str],
    max_string_length: int,
    prefix: str = "",
    numbers: Collection[str] = (),
) -> list[FieldError]:
    """What makes `observation` too big to store, as errors named `<prefix>observation.<key>`.

    Every string (a feature's value, another key or its value) is at most `max_string_length`
    characters, and besides its features an observation holds at most MAX_EXTRA_KEYS other keys,
    each with a string, number, boolean or null: so a stored observation, and a page of them,
    has a size known in advance (see the README). Everything else is the schema's to check,
    a string where a number feature (`numbers`) is expected included.
    """
    if not isinstance(observation, dict):
        return []
    errors = []
    extra = 0
    for key, value in observation.items():
        name = f"{prefix}observation.{key}"
        if key not in features:
            extra += 1
            if len(key) > max_string_length:
                problem = f"has a key longer than {max_string_length} characters"
                errors.append(FieldError(f"{prefix}observation", problem))
                continue
            if value is not None and not isinstance(value, (str, int, float, bool)):
                errors.append(FieldError(name, "is not a feature: it may only be a string, number, boolean or null"))
                continue
        if isinstance(value, str) and len(value) > max_string_length and key not in numbers:
            errors.append(FieldError(name, f"must be at most {max_string_length} characters, got {len(value)}"))
    if extra > MAX_EXTRA_KEYS:
        problem = f"has {extra} keys that are not features; at most {MAX_EXTRA_KEYS}"
        errors.append(FieldError(f"{prefix}observation", problem))
    return errors


def max_record_json_bytes(feature_names: Collection[str], max_string_length: int) -> int:
    """An upper bound of one stored record's JSON as the API returns it (UTF-8), for a model with
    these features when every observation passed `observation_problems`.

    Each character takes at most 6 bytes (a control character's `\\u0001`); each key of the
    observation (its features and up to MAX_EXTRA_KEYS others) appears with its value, and in
    at most one warning. A page of `n` records is at
    most `n` times this, plus a few bytes.
    """
    key_length = max([max_string_length, *(len(name) for name in feature_names)])
    value_bytes = max(6 * max_string_length, 32)  # a number's text is at most 24 characters
    entry = 6 * key_length + value_bytes + 8
    # A warning quotes at most WARNING_QUOTE characters of a key and of a value (a feature's
    # name in full), in at most 60 characters of its own.
    warning = 6 * max(WARNING_QUOTE, *(len(name) for name in feature_names)) + 6 * (WARNING_QUOTE + 1) + 60
    fixed = 1024 + 2 * 6 * MAX_ID_LENGTH  # proba, version, times...; the id twice (id, observation_id)
    return fixed + (len(feature_names) + MAX_EXTRA_KEYS) * (entry + warning)


def check_id(value: Any, field_name: str = "id") -> PredictionId:
    """Return `value` as a prediction id, or raise InvalidRequest saying why it cannot be one."""
    problem = id_problem(value)
    if problem:
        raise InvalidRequest([FieldError(field_name, problem)])
    return normalized_id(value)  # type: ignore[no-any-return]


def id_key(prediction_id: PredictionId) -> str:
    """A string key that keeps 1 and "1" apart: the id's canonical JSON text."""
    return _ID_JSON.encode(prediction_id)


def id_from_key(key: str) -> PredictionId:
    value = json.loads(key)
    assert isinstance(value, (int, str))
    return value


def canonical_json(value: Any) -> str:
    """Stable JSON text of an observation, so equal observations compare equal when stored."""
    return _CANONICAL_JSON.encode(value)


class ShadowScore(NamedTuple):
    """A challenger's answer to a record's observation (see SHADOW_MODEL_DIRS): its probability
    and class, or the reason it has none (a feature it needs is missing, say). A named tuple:
    one is made per challenger and request, and a frozen dataclass takes 5 times as long."""

    model_version: str
    proba: float | None = None
    predicted_class: bool | None = None
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "proba": self.proba, "predicted_class": self.predicted_class,
                "problem": self.problem}


def shadows_json(shadows: Sequence[ShadowScore]) -> str:
    """How stores keep a record's shadow scores: canonical JSON text of a list."""
    return canonical_json([shadow.as_json() for shadow in shadows])


def shadows_from_json(text: str | list[Any] | None) -> tuple[ShadowScore, ...]:
    """The shadow scores `shadows_json` wrote (or its value already parsed); none for None."""
    values = json.loads(text) if isinstance(text, str) else (text or [])
    return tuple(
        ShadowScore(v["model_version"], v.get("proba"), v.get("predicted_class"), v.get("problem")) for v in values
    )


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as stored: the client's observation, the model's answer and its outcome.

    `created_at` and `updated_at` are timezone-aware UTC datetimes; `true_class` is 0 or 1,
    None until the outcome is known. `shadows` are the challengers' scores of the same
    observation, stored with it and never part of the answer.
    """

    id: PredictionId
    observation: dict[str, Any]
    proba: float
    predicted_class: bool
    threshold: float
    model_version: str
    created_at: datetime
    updated_at: datetime
    true_class: int | None = None
    warnings: tuple[str, ...] = field(default=())
    shadows: tuple[ShadowScore, ...] = field(default=())

    def same_request(self, other: PredictionRecord) -> bool:
        """True when `other` is a retry of this prediction: same id and same observation."""
        return (
            self.id == other.id
            and type(self.id) is type(other.id)
            and (canonical_json(self.observation) == canonical_json(other.observation))
        )

    def as_made(self) -> PredictionRecord:
        """The record as it was when the prediction was made: no outcome, `updated_at` = `created_at`.

        What a caller who may not see outcomes gets back when it replays a stored prediction.
        """
        return replace(self, true_class=None, updated_at=self.created_at)

    def with_outcome(self, true_class: int, now: datetime) -> PredictionRecord:
        return replace(self, true_class=true_class, updated_at=now)

    def as_json(self) -> dict[str, Any]:
        """The record as the API returns it (`observation_id` repeats `id` for older clients)."""
        return {
            "id": self.id,
            "observation_id": self.id,
            "observation": self.observation,
            "proba": self.proba,
            "predicted_class": self.predicted_class,
            "threshold": self.threshold,
            "model_version": self.model_version,
            "true_class": self.true_class,
            "warnings": list(self.warnings),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class Page:
    """Records newest first; pass `next_cursor` back to get the following page (None: no more)."""

    items: list[PredictionRecord]
    next_cursor: str | None
