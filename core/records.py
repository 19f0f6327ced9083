"""What the core hands to stores and gets back: prediction ids, new and stored records, pages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core.errors import FieldError, InvalidRequest

PredictionId = int | str

MAX_ID_LENGTH = 256
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


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as stored: the client's observation, the model's answer and its outcome.

    `created_at` and `updated_at` are timezone-aware UTC datetimes; `true_class` is 0 or 1,
    None until the outcome is known.
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
