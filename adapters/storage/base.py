"""What every storage backend shares: the PredictionStore methods written once around small hooks.

A backend (see core/ports.py for the contract, tests/storage/ for the suite it must pass):
- subclasses StoreBase and writes `_record_new`, `set_outcome`, `aggregates`, `get`, `list`,
  `replace_aggregates` and, when it keeps a running total, `aggregate_totals`;
- defines `open_url(url, options)`, which adapters/storage/url.py calls for its URL scheme.

It holds no domain logic: the counters of a record come with it, those of an outcome come as
a function of the stored record (core.quality.outcome_counters), and the store only adds them.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters.storage.codec import counters_per_record, summed_by_version
from core.errors import ConflictingPrediction, CoreError, FieldError, InvalidRequest
from core.ports import MAX_BATCH, AggregateRow
from core.records import PredictionRecord, id_key

Results = list[tuple[PredictionRecord, bool]]


@dataclass(frozen=True)
class StoreOptions:
    """What the settings tell a backend beyond its URL; each backend reads the fields it needs."""

    aws_region: str | None = None
    dynamodb_endpoint_url: str | None = None
    pool_size: int = 4
    statement_timeout: float = 5.0
    connect_timeout: float = 5.0


class BadStoreUrl(ValueError):
    """A URL of a backend's scheme that the backend cannot use; the text says why, without the URL."""


@dataclass(frozen=True)
class Batch:
    """A `record_many` call checked once for every backend: at most MAX_BATCH records, ids that
    repeat in the batch only with an equal observation (else ConflictingPrediction), and one
    counter mapping per record. Backends store `records` (distinct ids, first occurrences) and
    `answers` maps their results back to the call's order."""

    records: list[PredictionRecord]
    counters: list[Mapping[str, float]]
    first_of: list[int]  # for each record of the call, its index in `records`

    @classmethod
    def of(
        cls, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float] | None] | None
    ) -> Batch:
        increments = counters_per_record(records, counters)
        index_of: dict[str, int] = {}
        firsts: list[PredictionRecord] = []
        first_counters: list[Mapping[str, float]] = []
        first_of = []
        for record, record_counters in zip(records, increments):
            key = id_key(record.id)
            index = index_of.setdefault(key, len(firsts))
            if index == len(firsts):
                firsts.append(record)
                first_counters.append(record_counters)
            elif not firsts[index].same_request(record):
                raise ConflictingPrediction(record.id)
            first_of.append(index)
        if len(firsts) > MAX_BATCH:
            raise InvalidRequest([FieldError("records", f"at most {MAX_BATCH} predictions in one batch")])
        return cls(firsts, first_counters, first_of)

    def answers(self, stored: Sequence[tuple[PredictionRecord, bool]]) -> Results:
        """Each record of the call: its first occurrence's result, and `False` for a repeat."""
        results = []
        seen: set[int] = set()
        for index in self.first_of:
            record, created = stored[index]
            results.append((record, created and index not in seen))
            seen.add(index)
        return results


class StoreBase:
    """`record`, `record_many`, `aggregate_totals` and `check` written once."""

    def record(
        self, record: PredictionRecord, counters: Mapping[str, float] | None = None
    ) -> tuple[PredictionRecord, bool]:
        return self.record_many([record], None if counters is None else [counters])[0]

    def record_many(
        self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]] | None = None
    ) -> Results:
        batch = Batch.of(records, counters)
        if not batch.records:
            return []
        return batch.answers(self._record_new(batch.records, batch.counters))

    def _record_new(self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]]) -> Results:
        """Store `records` (distinct ids, at most MAX_BATCH) all or nothing, each with its counters.

        Returns `(stored, created)` per record: an id already stored with an equal observation is
        `(the stored record, False)` and adds nothing; with another one, ConflictingPrediction.
        """
        raise NotImplementedError

    def aggregates(
        self,
        model_version: str | None = None,
        since: date | None = None,
        until: date | None = None,
        names: Collection[str] | None = None,
    ) -> list[AggregateRow]:
        raise NotImplementedError

    def aggregate_totals(
        self, model_version: str | None = None, since: date | None = None, until: date | None = None
    ) -> dict[str, dict[str, float]]:
        """Summed from the day rows on every call: a backend that keeps totals in its writes overrides it."""
        return summed_by_version(self.aggregates(model_version, since, until))

    def check(self) -> None:
        return None


Group = tuple[Sequence[PredictionRecord], Sequence[Mapping[str, float]] | None]


class Job:
    """One `record_many` call waiting for a group commit: what to write, then what came of it."""

    def __init__(self, records: Sequence[PredictionRecord], values: list[Any],
                 counters: Sequence[Mapping[str, float]]) -> None:
        self.records, self.values, self.counters = records, values, counters
        self.results: Results | None = None
        self.error: Exception | None = None
        self.done = False

    def settle(self, results: Results | None, error: Exception | None) -> None:
        self.results, self.error, self.done = results, error, True

    def outcome(self) -> Results | Exception:
        if self.error is not None:
            return self.error
        assert self.results is not None, "a job is settled before its caller reads it"
        return self.results


class GroupCommitStore(StoreBase):
    """A store whose durable commit is worth sharing: every write waiting at one moment goes into
    one transaction (one fsync), each still all or nothing.

    Whoever holds the commit lock writes every job waiting at that moment through `_commit`; a
    caller returns only once the transaction holding its jobs has committed. A backend writes
    `_values` (a record as its row, computed outside the lock) and `_commit` (one transaction,
    a savepoint per job, settling every job).
    """

    def __init__(self) -> None:
        self._commit_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._pending: list[Job] = []

    def record_groups(self, groups: Sequence[Group]) -> list[Results | Exception]:
        """`record_many` for each (records, counters) group, each all or nothing, in one commit.

        Returns each group's results, or the exception `record_many` would have raised for it.
        For a caller that gathers many requests' writes itself (adapters.writes).
        """
        outcomes: list[Results | Exception] = []
        batches: list[tuple[int, Batch, Job]] = []
        for n, (records, counters) in enumerate(groups):
            try:
                batch = Batch.of(records, counters)
            except CoreError as e:
                outcomes.append(e)
                continue
            outcomes.append([])
            if batch.records:
                batches.append((n, batch, self._job(batch.records, batch.counters)))
        self._write_jobs([job for _, _, job in batches])
        for n, batch, job in batches:
            outcome = job.outcome()
            outcomes[n] = outcome if isinstance(outcome, Exception) else batch.answers(outcome)
        return outcomes

    def _record_new(self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]]) -> Results:
        job = self._job(records, counters)
        self._write_jobs([job])
        outcome = job.outcome()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _job(self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]]) -> Job:
        return Job(records, [self._values(r) for r in records], counters)

    def _write_jobs(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        with self._queue_lock:
            self._pending.extend(jobs)
        with self._commit_lock:
            if not all(job.done for job in jobs):
                with self._queue_lock:
                    batch, self._pending = self._pending, []
                try:
                    self._commit(batch)
                except Exception as e:  # noqa: BLE001 - nothing was committed: every job gets the error
                    for job in batch:
                        job.settle(None, e)

    def _values(self, record: PredictionRecord) -> Any:
        raise NotImplementedError

    def _commit(self, batch: list[Job]) -> None:
        """Write `batch` in one transaction, each job all or nothing, and settle every job."""
        raise NotImplementedError
