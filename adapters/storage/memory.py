"""PredictionStore in a dict, the fake that fast tests use in place of a real database."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from adapters.storage.base import BadStoreUrl, Results, StoreBase, StoreOptions
from adapters.storage.codec import (
    AggregateKey,
    aggregate_key,
    aggregate_rows,
    check_limit,
    counters_by_key,
    cursor_time,
    decode_cursor,
    encode_cursor,
    utc,
    utc_text,
)
from core import quality
from core.errors import ConflictingPrediction, UnknownPrediction
from core.ports import AggregateRow, OutcomeCounters
from core.records import Page, PredictionId, PredictionRecord, canonical_json, id_key

CURSOR_KIND = "memory"


@dataclass(frozen=True)
class _Row:
    seq: int
    record: PredictionRecord
    observation: str


class MemoryStore(StoreBase):
    """A thread-safe PredictionStore that keeps records in this process only.

    It passes the same contract suite as the durable stores; observations are kept as canonical
    JSON text so that callers can neither share nor mutate what is stored. Records and their
    aggregate counters change together under one lock, after every check has passed.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._rows: dict[str, _Row] = {}
        self._aggregates: dict[AggregateKey, quality.Counters] = {}
        self._next_seq = 1

    def _record_new(self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]]) -> Results:
        with self._lock:
            staged: dict[str, _Row] = {}
            added: dict[AggregateKey, quality.Counters] = {}
            results: Results = []
            for record, record_counters in zip(records, counters):
                key = id_key(record.id)
                existing = self._rows.get(key)
                if existing is not None:
                    stored = self._read(existing)
                    if not stored.same_request(record):
                        raise ConflictingPrediction(record.id)
                    results.append((stored, False))
                    continue
                row = self._row(self._next_seq + len(staged), record)
                staged[key] = row
                quality.add(added.setdefault(aggregate_key(row.record), {}), record_counters)
                results.append((self._read(row), True))
            self._rows.update(staged)
            self._next_seq += len(staged)
            self._add(added)
            return results

    def set_outcome(
        self, prediction_id: PredictionId, true_class: int, now: datetime, counters: OutcomeCounters | None = None
    ) -> PredictionRecord:
        key = id_key(prediction_id)
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                raise UnknownPrediction(prediction_id)
            old = self._read(row)
            increments = counters(old, int(true_class)) if counters else {}
            row = replace(row, record=row.record.with_outcome(int(true_class), utc(now)))
            self._rows[key] = row
            self._add({aggregate_key(old): increments})
            return self._read(row)

    def aggregates(
        self,
        model_version: str | None = None,
        since: date | None = None,
        until: date | None = None,
        names: Collection[str] | None = None,
    ) -> list[AggregateRow]:
        with self._lock:
            rows = [(key, dict(counters)) for key, counters in self._aggregates.items()]
        return aggregate_rows(rows, model_version, since, until, names)

    def replace_aggregates(self, rows: Sequence[AggregateRow]) -> None:
        fresh = counters_by_key(rows)
        with self._lock:
            self._aggregates = fresh

    def _add(self, increments: Mapping[AggregateKey, Mapping[str, float]]) -> None:
        for key, counters in increments.items():
            if counters:
                quality.add(self._aggregates.setdefault(key, {}), counters)

    def get(self, prediction_id: PredictionId) -> PredictionRecord:
        with self._lock:
            row = self._rows.get(id_key(prediction_id))
        if row is None:
            raise UnknownPrediction(prediction_id)
        return self._read(row)

    def list(self, limit: int, cursor: str | None = None) -> Page:
        check_limit(limit)
        after: tuple[str, int] | None = None
        if cursor is not None:
            created, seq = decode_cursor(CURSOR_KIND, cursor, (str, int))
            after = (cursor_time(created), seq)
        with self._lock:
            rows = sorted(self._rows.values(), key=_position, reverse=True)
        if after is not None:
            rows = [row for row in rows if _position(row) < after]
        page = rows[: limit + 1]
        more = len(page) > limit
        page = page[:limit]
        next_cursor = encode_cursor(CURSOR_KIND, _position(page[-1])) if more else None
        return Page([self._read(row) for row in page], next_cursor)

    def _row(self, seq: int, record: PredictionRecord) -> _Row:
        normal = replace(
            record,
            observation={},
            created_at=utc(record.created_at),
            updated_at=utc(record.updated_at),
            warnings=tuple(record.warnings),
        )
        return _Row(seq, normal, canonical_json(record.observation))

    @staticmethod
    def _read(row: _Row) -> PredictionRecord:
        return replace(row.record, observation=json.loads(row.observation))


def _position(row: _Row) -> tuple[str, int]:
    return (utc_text(row.record.created_at), row.seq)



def open_url(url: str, options: StoreOptions) -> MemoryStore:
    """`memory://`: a store in this process, lost when it exits (tests, trying the service)."""
    if url != "memory://":
        raise BadStoreUrl("memory:// takes nothing after it")
    return MemoryStore()
