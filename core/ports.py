"""The storage port: what the core needs from any store of predictions and outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from core.records import Page, PredictionId, PredictionRecord


class PredictionStore(Protocol):
    """Durable record of every prediction and its later true outcome.

    Contract, identical for every backend (tests/storage/ runs one suite against all of them):

    - `record(r)` stores a new prediction and returns `(stored, True)`. If `r.id` is already
      stored with an equal observation (`PredictionRecord.same_request`) it returns
      `(the stored record unchanged, False)`: client and Lambda retries are safe. If the id is
      stored with a different observation it raises `ConflictingPrediction` and changes nothing.
    - `record_many(rs)` does the same for several records, all or nothing: if any one conflicts
      (with the store or with another in the batch) nothing is stored. Ids in one batch are
      distinct; an exact retry of an already stored id is returned unchanged.
    - `set_outcome(id, true_class, now)` sets `true_class` (0 or 1) and `updated_at = now`, and
      returns the updated record; setting it again replaces it. An unknown id raises
      `UnknownPrediction`.
    - `get(id)` returns the record or raises `UnknownPrediction`. Ids are ints or strings, and
      `1` and `"1"` are different ids.
    - `list(limit, cursor)` returns a `Page` of records newest first (by `created_at`, ties
      broken the same way on every call); `cursor` is the opaque `next_cursor` of the previous
      page, None for the first. A cursor the store did not make raises `InvalidRequest`.
    - `check()` raises `StorageError` when the store cannot be reached; used by health checks.
    - Any backend failure (unwritable file, unreachable or throttled service) raises
      `StorageError`, and a write that raised left nothing half-written.
    """

    def record(self, record: PredictionRecord) -> tuple[PredictionRecord, bool]: ...

    def record_many(
        self, records: Sequence[PredictionRecord]
    ) -> list[tuple[PredictionRecord, bool]]: ...

    def set_outcome(
        self, prediction_id: PredictionId, true_class: int, now: datetime
    ) -> PredictionRecord: ...

    def get(self, prediction_id: PredictionId) -> PredictionRecord: ...

    def list(self, limit: int, cursor: str | None = None) -> Page: ...

    def check(self) -> None: ...
