"""The app's prediction writers (adapters/writes.py) over real stores: what each request
gets back, what is stored, and that SQLite's writer gathers concurrent requests into one call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from adapters.storage import MemoryStore, SqliteStore
from adapters.writes import BatchingWriter, Group, Outcome, PooledWriter, server_writes, writer_for
from core.errors import ConflictingPrediction, InvalidRequest, StorageError
from core.model import DEFAULT_MODEL_DIR, load_model
from core.records import PredictionRecord
from core.service import DirectWrites, PredictionService
from tests.helpers import README_PASSENGER, app_client
from tests.storage.records import make_record

T = TypeVar("T")


class CountingSqliteStore(SqliteStore):
    """A real SQLite store that remembers how many groups each record_groups call carried, and
    can hold a call until released (so that requests pile up behind it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def record_groups(self, groups: Sequence[Group]) -> list[Outcome]:
        self.calls.append(len(groups))
        self.entered.set()
        self.gate.wait(timeout=10)
        return super().record_groups(groups)


def test_sqlite_gets_the_batching_writer_and_other_stores_the_thread_pool(tmp_path: Path) -> None:
    assert isinstance(writer_for(SqliteStore(tmp_path / "p.db")), BatchingWriter)
    assert isinstance(writer_for(MemoryStore()), PooledWriter)


def test_requests_waiting_together_are_written_in_one_call_and_each_gets_its_own_answer(tmp_path: Path) -> None:
    store = CountingSqliteStore(tmp_path / "p.db")
    writer = BatchingWriter(store)

    async def scenario() -> list[object]:
        store.gate.clear()
        first = asyncio.ensure_future(writer.record_many([make_record("first")], [{"n": 1}]))
        await asyncio.to_thread(store.entered.wait, 10)  # the writer thread is inside its first call
        later = [
            asyncio.ensure_future(writer.record_many([make_record(f"later-{k}", {"k": k})], [{"n": 1}]))
            for k in range(20)
        ]
        await asyncio.sleep(0.05)  # every later request is queued behind the held call
        store.gate.set()
        return await asyncio.gather(first, *later)

    answers = asyncio.run(scenario())

    assert store.calls == [1, 20]
    assert [results[0][0].id for results in answers] == ["first", *(f"later-{k}" for k in range(20))]  # type: ignore[index]
    assert all(results[0][1] for results in answers)  # type: ignore[index]
    assert len(store.list(100).items) == 21
    assert store.aggregate_totals() == {"titanic-1": {"n": 21}}


def test_a_conflicting_request_gets_its_error_and_the_others_in_its_call_are_stored(tmp_path: Path) -> None:
    store = CountingSqliteStore(tmp_path / "p.db")
    store.record(make_record("taken", {"Age": 1.0}))
    store.calls.clear()
    store.entered.clear()
    writer = BatchingWriter(store)

    async def scenario() -> list[object]:
        store.gate.clear()
        held = asyncio.ensure_future(writer.record_many([make_record("held")], [{"n": 1}]))
        await asyncio.to_thread(store.entered.wait, 10)
        calls = [
            writer.record_many([make_record("new-1")], [{"n": 1}]),
            writer.record_many([make_record("taken", {"Age": 2.0})], [{"n": 1}]),
            writer.record_many([make_record("new-2"), make_record("new-3")], [{"n": 1}, {"n": 1}]),
        ]
        waiting = [asyncio.ensure_future(call) for call in calls]
        await asyncio.sleep(0.05)
        store.gate.set()
        return await asyncio.gather(held, *waiting, return_exceptions=True)

    held, new_1, conflict, pair = asyncio.run(scenario())

    assert store.calls == [1, 3]
    assert isinstance(conflict, ConflictingPrediction)
    assert [r.id for r, created in pair] == ["new-2", "new-3"]  # type: ignore[union-attr]
    assert {r.id for r in store.list(10).items} == {"taken", "held", "new-1", "new-2", "new-3"}
    assert store.get("taken").observation == {"Age": 1.0}
    assert store.aggregate_totals()["titanic-1"]["n"] == 4


def test_a_store_failure_reaches_every_request_waiting_for_that_call(tmp_path: Path) -> None:
    unwritable = tmp_path / "missing-directory" / "p.db"
    writer = BatchingWriter(SqliteStore(unwritable))

    async def scenario() -> list[object]:
        calls = [writer.record_many([make_record(k)], [{"n": 1}]) for k in range(3)]
        return await asyncio.gather(*calls, return_exceptions=True)

    assert all(isinstance(outcome, StorageError) for outcome in asyncio.run(scenario()))


def test_a_request_cancelled_while_waiting_still_has_its_prediction_stored(tmp_path: Path) -> None:
    store = CountingSqliteStore(tmp_path / "p.db")
    writer = BatchingWriter(store)

    async def scenario() -> None:
        store.gate.clear()
        request = asyncio.ensure_future(writer.record_many([make_record("gone")], [{"n": 1}]))
        await asyncio.to_thread(store.entered.wait, 10)
        request.cancel()  # the client went away; the write is already under way
        store.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await request
        # A later request on the same loop is answered once the first call is done.
        await writer.record_many([make_record("after")], [{"n": 1}])

    asyncio.run(scenario())

    assert {r.id for r in store.list(10).items} == {"gone", "after"}


def test_each_event_loop_gets_its_own_answers(tmp_path: Path) -> None:
    # Lambda's adapter runs each invocation on an event loop of its own.
    store = SqliteStore(tmp_path / "p.db")
    writer = BatchingWriter(store)

    first = asyncio.run(writer.record_many([make_record(1)], [{"n": 1}]))
    second = asyncio.run(writer.record_many([make_record(2)], [{"n": 1}]))

    assert [first[0][0].id, second[0][0].id] == [1, 2]
    assert first[0][1] and second[0][1]


class InterruptedStore(SqliteStore):
    def record_groups(self, groups: Sequence[Group]) -> list[Outcome]:
        raise KeyboardInterrupt


def test_an_interrupted_write_answers_its_requests_and_the_writer_goes_on(tmp_path: Path) -> None:
    writer = BatchingWriter(InterruptedStore(tmp_path / "p.db"))

    async def scenario() -> list[object]:
        first = await asyncio.gather(writer.record_many([make_record(1)], [{"n": 1}]), return_exceptions=True)
        later = await asyncio.gather(writer.record_many([make_record(2)], [{"n": 1}]), return_exceptions=True)
        return [*first, *later]

    outcomes = asyncio.run(asyncio.wait_for(scenario(), timeout=10))

    assert all(isinstance(outcome, StorageError) for outcome in outcomes)


def test_a_server_scores_on_its_event_loop_only_when_every_model_has_a_fast_form(tmp_path: Path) -> None:
    fast, slow = load_model(DEFAULT_MODEL_DIR), load_model(DEFAULT_MODEL_DIR, engine="sklearn")
    store = SqliteStore(tmp_path / "p.db")

    assert server_writes(store, [fast]).scores_inline  # type: ignore[attr-defined]
    assert not server_writes(store, [slow]).scores_inline  # type: ignore[attr-defined]
    assert not server_writes(store, [fast, slow]).scores_inline, "a scikit-learn challenger scores in a thread too"  # type: ignore[attr-defined]


def test_every_prediction_request_goes_through_the_services_writes(tmp_path: Path) -> None:
    model = load_model(DEFAULT_MODEL_DIR)
    store = MemoryStore()
    seen: list[tuple[str, int]] = []

    class Watched(DirectWrites):
        async def score(self, work: Callable[[], T]) -> T:
            seen.append(("score", 0))
            return await super().score(work)

        async def record_many(self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]]
                              ) -> list[tuple[PredictionRecord, bool]]:
            seen.append(("record", len(records)))
            return await super().record_many(records, counters)

    service = PredictionService(model, store, lambda: datetime(2026, 1, 1, tzinfo=UTC), writes=Watched(store))
    with app_client(service) as client:
        single = client.post("/predict", json={"id": 1, "observation": README_PASSENGER})
        batch = client.post("/predict", json={"observations": [{"id": 2, "observation": README_PASSENGER},
                                                               {"id": 3, "observation": README_PASSENGER}]})

    assert (single.status_code, batch.status_code) == (200, 200)
    assert seen == [("score", 0), ("record", 1), ("score", 0), ("record", 2)]
    assert [r.id for r in store.list(10).items] == [3, 2, 1]


def test_a_server_wired_service_also_predicts_synchronously_in_the_callers_thread(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "p.db")
    model = load_model(DEFAULT_MODEL_DIR)
    service = PredictionService(model, store, lambda: datetime(2026, 1, 1, tzinfo=UTC),
                                writes=server_writes(store, [model]))

    record, created = service.predict(1, README_PASSENGER)
    [(again, created_again)] = asyncio.run(service.predict_and_record([(1, README_PASSENGER)]))

    assert (created, created_again) == (True, False), "stored once, whichever form"
    assert again == record == store.get(1)
    with pytest.raises(InvalidRequest) as refused:
        service.predict_batch([(2, README_PASSENGER), (3, {**README_PASSENGER, "Age": "old"})])
    assert [e.field for e in refused.value.errors] == ["observations[1].observation.Age"]
