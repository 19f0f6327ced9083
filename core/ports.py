"""The storage port: what the core needs from any store of predictions and outcomes."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, TypeVar

from core.records import Page, PredictionId, PredictionRecord

# The most records one `record_many` call may carry on every backend (a DynamoDB transaction's limit).
MAX_BATCH = 100

# What setting an outcome adds to the aggregates, from the stored record (with its old outcome)
# and the new true class: core.quality.outcome_counters. The store calls it inside its write.
OutcomeCounters = Callable[[PredictionRecord, int], Mapping[str, float]]
T = TypeVar("T")


@dataclass(frozen=True)
class AggregateRow:
    """The quality counters (see core.quality) of one model version on one UTC day."""

    model_version: str
    day: str  # "YYYY-MM-DD", the UTC day the predictions were made
    counters: dict[str, float]


class PredictionStore(Protocol):
    """Durable record of every prediction and its later true outcome.

    Contract, identical for every backend (tests/storage/ runs one suite against all of them):

    - `record(r, counters)` stores a new prediction and returns `(stored, True)`. If `r.id` is
      already stored with an equal observation (`PredictionRecord.same_request`) it returns
      `(the stored record unchanged, False)`: client and Lambda retries are safe. If the id is
      stored with a different observation it raises `ConflictingPrediction` and changes nothing.
    - `record_many(rs, counters)` does the same for up to `MAX_BATCH` records, all or nothing:
      if any one conflicts (with the store or with another in the batch) nothing is stored.
      An id repeated in one batch with an equal observation is answered with the first one's
      stored record and `False`; an exact retry of an already stored id is returned unchanged.
      More than `MAX_BATCH` records raise `InvalidRequest`.
    - Aggregates: in the same atomic write as a *newly stored* record, its `counters` (one
      mapping per record; None or empty adds nothing) are added to the aggregate row of
      (`r.model_version`, UTC day of `r.created_at`). A retry adds nothing.
    - `set_outcome(id, true_class, now, counters)` sets `true_class` (0 or 1) and
      `updated_at = now`, and returns the updated record; setting it again replaces it. In the
      same atomic write it adds `counters(stored record, true_class)` (None adds nothing;
      the service hands `core.quality.outcome_counters`) to the record's aggregate row, computed
      from the record as that write read it, so a replaced outcome is moved, never counted
      twice. An unknown id raises `UnknownPrediction`.
    - `aggregates(model_version, since, until, names)` returns the aggregate rows, optionally
      only one version's, only days in [since, until] (inclusive) and only the counters in
      `names`, ordered by (version, day). Its cost depends on the number of rows (versions ×
      days) and counters read, never on the number of predictions.
    - `aggregate_totals(model_version, since, until)` returns each version's counters summed
      over the same days: `{version: counters}`, equal to summing `aggregates()` (to rounding
      of the float sums). Over all days its cost must not depend on the number of days either
      where the backend can keep a running total in the same atomic write (SQLite does).
    - `replace_aggregates(rows)` replaces every aggregate row by `rows` (the repair command,
      after a recomputation over the raw records).
    - `get(id)` returns the record or raises `UnknownPrediction`. Ids are ints or strings, and
      `1` and `"1"` are different ids.
    - `list(limit, cursor)` returns a `Page` of records newest first (by `created_at`, ties
      broken the same way on every call); `cursor` is the opaque `next_cursor` of the previous
      page, None for the first. A cursor the store did not make, or `limit < 1`, raises
      `InvalidRequest`. On DynamoDB the listing reads an index that may lag writes briefly.
    - Timestamps given to a store must be timezone-aware (`ValueError` otherwise); they come
      back in UTC, to the microsecond.
    - `check()` raises `StorageError` when the store cannot be reached or cannot take a write: a
      persistent backend writes a row of its own, which no listing or aggregate ever shows
      (SQLite: a full disk or a read-only file fails it; DynamoDB: a role without write access);
      used by health checks and the startup check.
    - Any backend failure (unwritable file, an OS error of any kind, unreachable or throttled
      service) raises `StorageError`, never another exception, and a write that raised left
      nothing half-written: not the record, not its counters.
    """

    def record(
        self, record: PredictionRecord, counters: Mapping[str, float] | None = None
    ) -> tuple[PredictionRecord, bool]: ...

    def record_many(
        self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]] | None = None
    ) -> list[tuple[PredictionRecord, bool]]: ...

    def set_outcome(
        self, prediction_id: PredictionId, true_class: int, now: datetime, counters: OutcomeCounters | None = None
    ) -> PredictionRecord: ...

    def aggregates(
        self,
        model_version: str | None = None,
        since: date | None = None,
        until: date | None = None,
        names: Collection[str] | None = None,
    ) -> list[AggregateRow]: ...

    def aggregate_totals(
        self, model_version: str | None = None, since: date | None = None, until: date | None = None
    ) -> dict[str, dict[str, float]]: ...

    def replace_aggregates(self, rows: Sequence[AggregateRow]) -> None: ...

    def get(self, prediction_id: PredictionId) -> PredictionRecord: ...

    def list(self, limit: int, cursor: str | None = None) -> Page: ...

    def check(self) -> None: ...


class Writes(Protocol):
    """Where predict-and-record's blocking work runs (core.service.PredictionService.predict_and_record).

    Chosen once, by the composition root: a server scores on its event loop or in a thread
    (scikit-learn's milliseconds would hold up the loop) and hands the store write to a thread
    pool or to a writer thread that commits many requests' writes at once (adapters/writes.py);
    a notebook does both in its own thread (core.service.DirectWrites).
    """

    async def score(self, work: Callable[[], T]) -> T:
        """`work()`'s result (or its exception)."""
        ...

    async def record_many(
        self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]]
    ) -> list[tuple[PredictionRecord, bool]]:
        """What the store's `record_many(records, counters)` returns, or raises."""
        ...
