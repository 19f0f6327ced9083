"""Every error the core raises. They carry data, never HTTP status codes: adapters map them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class CoreError(Exception):
    """Base class of everything the core raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a client's input."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class InvalidObservation(CoreError, ValueError):
    """The input cannot be scored; `errors` lists every problem found, not just the first."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))


class InvalidRequest(InvalidObservation):
    """A request around the observation (id, outcome, batch) is malformed."""


class ModelError(CoreError):
    """A model artifact cannot be used: missing, tampered with, or fitted by another library version."""


class UnknownPrediction(CoreError, KeyError):
    """No prediction is stored under this id."""

    def __init__(self, prediction_id: Any) -> None:
        self.prediction_id = prediction_id
        super().__init__(prediction_id)

    def __str__(self) -> str:
        return f"no prediction with id {self.prediction_id!r}"


class ConflictingPrediction(CoreError):
    """The id is already stored with a different observation; nothing was changed."""

    def __init__(self, prediction_id: Any) -> None:
        self.prediction_id = prediction_id
        super().__init__(f"id {prediction_id!r} is already stored with a different observation")


class StorageError(CoreError):
    """The store failed (unwritable file, unreachable or throttled DynamoDB); nothing was half-written."""
