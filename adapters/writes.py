"""Where a server's predict-and-record runs its blocking work (core.ports.Writes), without
blocking its event loop.

A store call blocks (SQLite's fsync, DynamoDB's round trips), so it cannot run on the event loop.
Handing every request to a thread of the pool costs more CPU than the service's own work: a
measured 270-400 µs per request, in thread wake-ups and GIL hand-offs. A store that can commit
many requests' writes at once (`record_groups`, SQLite's group commit) gets one writer thread per
process instead: each request queues its write and awaits a future, and the thread writes every
write waiting at that moment in one call, then settles their futures with one wake-up of each
event loop. Other stores (DynamoDB: one transaction per write, concurrent round trips) keep the
thread pool.

Scoring runs on the event loop when every model has a fast form (microseconds: less than a
thread's hand-off) and in the thread pool otherwise (scikit-learn's milliseconds would hold up
every other request).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from starlette.concurrency import run_in_threadpool

from adapters.storage.base import GroupCommitStore
from core.errors import StorageError
from core.model import Model
from core.ports import PredictionStore, Writes
from core.records import PredictionRecord

T = TypeVar("T")

Results = list[tuple[PredictionRecord, bool]]
Outcome = Results | Exception
Counters = Sequence[Mapping[str, float]]
Group = tuple[Sequence[PredictionRecord], Counters]


class GroupWriter(Protocol):
    def record_groups(self, groups: Sequence[Group]) -> list[Outcome]: ...


class PredictionWriter(Protocol):
    async def record_many(self, records: Sequence[PredictionRecord], counters: Counters) -> Results:
        """What `store.record_many(records, counters)` returns, or raises."""
        ...


class PooledWriter:
    """Each write in a thread of the pool."""

    def __init__(self, store: PredictionStore) -> None:
        self.store = store

    async def record_many(self, records: Sequence[PredictionRecord], counters: Counters) -> Results:
        return await run_in_threadpool(self.store.record_many, records, counters)


class BatchingWriter:
    """Every write waiting at one moment in one `record_groups` call of one thread per process."""

    def __init__(self, store: GroupWriter) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._waiting: list[tuple[Group, asyncio.Future[Results]]] = []
        self._wake = threading.Event()
        self._owner_pid = -1  # the thread belongs to the process that started it

    async def record_many(self, records: Sequence[PredictionRecord], counters: Counters) -> Results:
        future: asyncio.Future[Results] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._owner_pid != os.getpid():
                self._waiting = []
                self._owner_pid = os.getpid()
                threading.Thread(target=self._write_forever, name="prediction-writer", daemon=True).start()
            self._waiting.append(((records, counters), future))
            self._wake.set()
        # A request cancelled meanwhile (client gone) cancels its future only: the writer thread
        # holds the write and finishes it, and leaves a cancelled future unsettled.
        return await future

    def _write_forever(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                batch, self._waiting = self._waiting, []
                self._wake.clear()
            if batch:
                self._write(batch)

    def _write(self, batch: list[tuple[Group, asyncio.Future[Results]]]) -> None:
        # Whatever happens, every waiting request is answered: a request left waiting would hang.
        try:
            outcomes = self.store.record_groups([group for group, _ in batch])
            if len(outcomes) != len(batch):
                raise StorageError(f"the store answered {len(outcomes)} of {len(batch)} writes")
        except BaseException as e:  # noqa: BLE001 - every waiting request gets the error
            failure = e if isinstance(e, Exception) else StorageError(f"the writer was interrupted: {e!r}")
            outcomes = [failure] * len(batch)
        by_loop: defaultdict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Results], Outcome]]]
        by_loop = defaultdict(list)
        for (_, future), outcome in zip(batch, outcomes):
            by_loop[future.get_loop()].append((future, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # that loop was closed meanwhile: nobody awaits its futures
                pass


def _settle(settled: list[tuple[asyncio.Future[Results], Outcome]]) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class EventLoopWrites:
    """core.ports.Writes for an event loop: scoring inline or in the thread pool, the store
    write through `writer`."""

    def __init__(self, writer: PredictionWriter, scores_inline: bool) -> None:
        self.writer = writer
        self.scores_inline = scores_inline

    async def score(self, work: Callable[[], T]) -> T:
        return work() if self.scores_inline else await run_in_threadpool(work)

    async def record_many(self, records: Sequence[PredictionRecord], counters: Counters) -> Results:
        return await self.writer.record_many(records, counters)


def writer_for(store: PredictionStore) -> PredictionWriter:
    if isinstance(store, GroupCommitStore):
        return BatchingWriter(store)
    return PooledWriter(store)


def server_writes(store: PredictionStore, models: Iterable[Model]) -> Writes:
    """A server's writes: group commit where the store has it, scoring inline when every model
    (the champion and its challengers) has a fast form."""
    return EventLoopWrites(writer_for(store), scores_inline=all(m.engine == "fast" for m in models))
