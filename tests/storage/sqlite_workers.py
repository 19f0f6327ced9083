"""Code that tests run in other processes against one SQLite file (importable under spawn)."""

from __future__ import annotations

import itertools
import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from adapters.storage import SqliteStore
from core.errors import ConflictingPrediction, UnknownPrediction
from core.model import default_model
from core.service import PredictionService
from tests.storage.aggregate_checks import random_observation
from tests.storage.records import T0, make_record


def contested(prediction_id: int) -> bool:
    """Ids every writer records with its own observation: only one may win."""
    return prediction_id % 5 == 0


def observation(prediction_id: int, writer: int) -> dict[str, Any]:
    if contested(prediction_id):
        return {"n": prediction_id, "writer": writer}
    return {"n": prediction_id}


def write_all(path: str, process_no: int, threads: int, ids: list[int], barrier: Any, results: Any) -> None:
    """Record every id from `threads` threads, in a different order each; report each outcome."""
    store = SqliteStore(path)
    start = threading.Barrier(threads)

    def writer(thread_no: int) -> list[tuple[int, str, int]]:
        writer_no = process_no * threads + thread_no
        order = list(ids)
        random.Random(writer_no).shuffle(order)
        outcomes: list[tuple[int, str, int]] = []
        start.wait()
        for offset in range(0, len(order), 4):
            chunk = order[offset : offset + 4]
            records = [
                make_record(i, observation(i, writer_no), at=T0 + timedelta(milliseconds=i % 7)) for i in chunk
            ]
            if any(contested(i) for i in chunk):
                for record in records:
                    try:
                        _, created = store.record(record)
                        outcomes.append((int(record.id), "created" if created else "retried", writer_no))
                    except ConflictingPrediction:
                        outcomes.append((int(record.id), "conflict", writer_no))
            else:
                for record, (_, created) in zip(records, store.record_many(records)):
                    outcomes.append((int(record.id), "created" if created else "retried", writer_no))
        return outcomes

    barrier.wait()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = [o for thread_outcomes in pool.map(writer, range(threads)) for o in thread_outcomes]
    store.close()
    results.put(outcomes)


def passenger(prediction_id: int, writer: int) -> dict[str, Any]:
    """The observation a writer sends for an id: the same for every writer, except on contested ids."""
    seed = prediction_id * 1000 + writer if contested(prediction_id) else prediction_id
    return random_observation(random.Random(seed), default_model().schema)


def predict_and_label(path: str, process_no: int, threads: int, ids: list[int], barrier: Any, results: Any) -> None:
    """Predict every id (alone or in small batches) and set random outcomes, from `threads` threads."""
    ticks = itertools.count()
    clock = lambda: T0 + timedelta(hours=5 * (next(ticks) % 12))  # noqa: E731 (three days, round and round)
    service = PredictionService(default_model(), SqliteStore(path), clock)
    start = threading.Barrier(threads)

    def worker(thread_no: int) -> dict[str, int]:
        writer = process_no * threads + thread_no
        rng = random.Random(writer)
        order = list(ids)
        rng.shuffle(order)
        done = {"created": 0, "conflicts": 0, "outcomes": 0}
        start.wait()
        while order:
            chunk = [order.pop() for _ in range(min(len(order), rng.choice([1, 1, 3])))]
            try:
                stored = service.predict_batch([(i, passenger(i, writer)) for i in chunk])
                done["created"] += sum(created for _, created in stored)
            except ConflictingPrediction:
                done["conflicts"] += 1
            for _ in range(rng.choice([0, 1, 2])):
                try:
                    service.record_outcome(rng.choice(ids), rng.randint(0, 1))
                    done["outcomes"] += 1
                except UnknownPrediction:
                    pass
        return done

    barrier.wait()
    with ThreadPoolExecutor(threads) as pool:
        totals = list(pool.map(worker, range(threads)))
    service.store.close()  # type: ignore[attr-defined]
    results.put({key: sum(t[key] for t in totals) for key in totals[0]})


def write_until_killed(path: str) -> None:
    """Record ids 0, 1, 2... printing each id once its write has returned."""
    store = SqliteStore(path)
    i = 0
    while True:
        store.record(make_record(i, {"n": i}))
        print(i, flush=True)
        i += 1


if __name__ == "__main__":
    write_until_killed(sys.argv[1])
