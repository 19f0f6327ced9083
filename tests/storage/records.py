"""Records and names the storage tests make by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from core.records import PredictionId, PredictionRecord

REGION = "us-east-1"
T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_record(
    prediction_id: PredictionId,
    observation: dict[str, Any] | None = None,
    at: datetime = T0,
    **changes: Any,
) -> PredictionRecord:
    """A stored-looking prediction built by hand, with an explicit clock."""
    fields: dict[str, Any] = {
        "id": prediction_id,
        "observation": {"Age": 29.0, "Sex": "female", "Pclass": 1} if observation is None else observation,
        "proba": 0.8125,
        "predicted_class": True,
        "threshold": 0.5,
        "model_version": "titanic-1",
        "created_at": at,
        "updated_at": at,
    }
    fields.update(changes)
    return PredictionRecord(**fields)


def fresh_table_name() -> str:
    return f"predictions-{uuid.uuid4().hex[:12]}"
