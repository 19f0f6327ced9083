"""The use cases: predict and record, record an outcome, read back. Adapters call only these."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from core.errors import FieldError, InvalidObservation, InvalidRequest
from core.model import Model
from core.ports import PredictionStore
from core.predict import Prediction, predict_many
from core.records import Page, PredictionId, PredictionRecord, canonical_json, id_problem, normalized_id

MAX_LIST_LIMIT = 1000


def check_true_class(value: Any) -> int:
    """0 or 1 from 0, 1, false or true; anything else is an InvalidRequest."""
    if value is True or value is False:
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    raise InvalidRequest([FieldError("true_class", "must be 0, 1, true or false")])


class PredictionService:
    """Scores observations with one model and records every answer in one store.

    `clock` returns the current timezone-aware UTC time; it is injected so the core stays pure.
    """

    def __init__(self, model: Model, store: PredictionStore, clock: Callable[[], datetime]) -> None:
        self.model = model
        self.store = store
        self.clock = clock

    def predict(self, prediction_id: Any, observation: Any, strict: bool = False) -> tuple[PredictionRecord, bool]:
        """Score and store one observation; returns (record, created). Retries return the stored record."""
        return self.predict_batch([(prediction_id, observation)], strict=strict, prefix_errors=False)[0]

    def predict_batch(
        self, items: Sequence[tuple[Any, Any]], strict: bool = False, prefix_errors: bool = True
    ) -> list[tuple[PredictionRecord, bool]]:
        """Score and store several observations, all or nothing.

        Every id and observation is checked before anything is scored or stored; the errors of
        item k are named `k.id` / `k.observation.<feature>` (no prefix for a single item).
        """
        items = [(normalized_id(prediction_id), observation) for prediction_id, observation in items]
        errors: list[FieldError] = []
        # An exact repeat within the batch is a retry of the same prediction: answered, stored once.
        first: dict[tuple[type, Any], int] = {}
        repeat_of: dict[int, int] = {}
        for index, (prediction_id, observation) in enumerate(items):
            prefix = f"{index}." if prefix_errors else ""
            problem = id_problem(prediction_id)
            if problem:
                errors.append(FieldError(f"{prefix}id", problem))
                continue
            key = (type(prediction_id), prediction_id)
            if key not in first:
                first[key] = index
            elif _same_json(items[first[key]][1], observation):
                repeat_of[index] = first[key]
            else:
                errors.append(FieldError(f"{prefix}id", f"is repeated in this batch (item {first[key]}) "
                                                        "with a different observation"))
        predictions: list[Prediction] = []
        try:
            predictions = predict_many([obs for _, obs in items], self.model, strict=strict)
        except InvalidObservation as e:
            errors.extend(_renamed(e.errors, prefix_errors))
        if errors:
            raise InvalidRequest(sorted(errors, key=_item_order))
        now = self.clock()
        records = [
            PredictionRecord(
                id=prediction_id,
                observation=observation,
                proba=p.proba,
                predicted_class=p.predicted_class,
                threshold=p.threshold,
                model_version=p.model_version,
                created_at=now,
                updated_at=now,
                warnings=p.warnings,
            )
            for index, ((prediction_id, observation), p) in enumerate(zip(items, predictions))
            if index not in repeat_of
        ]
        if len(records) == 1:
            stored = [self.store.record(records[0])]
        else:
            stored = self.store.record_many(records)
        by_index = iter(stored)
        unique = {index: next(by_index) for index in range(len(items)) if index not in repeat_of}
        return [unique[repeat_of.get(index, index)] for index in range(len(items))]

    def record_outcome(self, prediction_id: Any, true_class: Any) -> PredictionRecord:
        """Attach the true outcome (0/1) to a stored prediction; setting it again replaces it."""
        errors = []
        problem = id_problem(prediction_id)
        if problem:
            errors.append(FieldError("id", problem))
        try:
            outcome = check_true_class(true_class)
        except InvalidRequest as e:
            errors.extend(e.errors)
        if errors:
            raise InvalidRequest(errors)
        return self.store.set_outcome(normalized_id(prediction_id), outcome, self.clock())

    def get(self, prediction_id: PredictionId) -> PredictionRecord:
        return self.store.get(prediction_id)

    def list(self, limit: int = 100, cursor: str | None = None) -> Page:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest([FieldError("limit", f"must be an integer from 1 to {MAX_LIST_LIMIT}")])
        return self.store.list(limit, cursor)


def _same_json(a: Any, b: Any) -> bool:
    try:
        return canonical_json(a) == canonical_json(b)
    except (TypeError, ValueError):
        return False


def _renamed(errors: list[FieldError], prefixed: bool) -> list[FieldError]:
    """predict_many names fields `k.Age`; the request names them `k.observation.Age`."""
    renamed = []
    for e in errors:
        index, _, rest = e.field.partition(".")
        name = f"observation.{rest}" if rest and rest != "observation" else "observation"
        renamed.append(FieldError(f"{index}.{name}" if prefixed else name, e.message))
    return renamed


def _item_order(e: FieldError) -> tuple[int, str]:
    head = e.field.partition(".")[0]
    return (int(head) if head.isdigit() else -1, e.field)
