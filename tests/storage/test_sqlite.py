"""What only the SQLite store promises: many processes and threads on one file, and durability."""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.storage import SqliteStore
from core.errors import StorageError, UnknownPrediction
from core.model import default_model
from core.quality import outcome_counters
from core.records import ShadowScore
from tests.storage import sqlite_workers
from tests.storage.aggregate_checks import all_records, as_rows, assert_rows_equal, recomputed
from tests.storage.records import T0, make_record

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_of_many_threads_lose_nothing_duplicate_nothing_and_report_conflicts(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    ids = list(range(120))
    processes, threads = 2, 4
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=sqlite_workers.write_all, args=(path, n, threads, ids, barrier, results))
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = []
    for _ in workers:
        while True:
            try:
                outcomes.extend(results.get(timeout=0.5))
                break
            except queue.Empty:
                assert all(w.exitcode in (None, 0) for w in workers), "a writer process failed"
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0

    by_id: dict[int, Counter[str]] = defaultdict(Counter)
    creator: dict[int, int] = {}
    for prediction_id, outcome, writer in outcomes:
        by_id[prediction_id][outcome] += 1
        if outcome == "created":
            creator[prediction_id] = writer
    writers = processes * threads
    for prediction_id in ids:
        if sqlite_workers.contested(prediction_id):
            assert by_id[prediction_id] == Counter(created=1, conflict=writers - 1), prediction_id
        else:
            assert by_id[prediction_id] == Counter(created=1, retried=writers - 1), prediction_id

    store = SqliteStore(path)
    listed = []
    cursor = None
    while True:
        page = store.list(50, cursor)
        listed.extend(page.items)
        if (cursor := page.next_cursor) is None:
            break
    assert sorted(r.id for r in listed) == ids
    for record in listed:
        assert isinstance(record.id, int)
        assert record.observation == sqlite_workers.observation(record.id, creator[record.id])
    store.close()


@pytest.mark.slow
def test_aggregates_written_by_two_processes_of_many_threads_equal_a_recomputation(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    ids = list(range(60))
    processes, threads = 2, 3
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=sqlite_workers.predict_and_label, args=(path, n, threads, ids, barrier, results))
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    done = []
    for _ in workers:
        while True:
            try:
                done.append(results.get(timeout=0.5))
                break
            except queue.Empty:
                assert all(w.exitcode in (None, 0) for w in workers), "a worker process failed"
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0

    store = SqliteStore(path)
    records = all_records(store)
    assert sorted(r.id for r in records) == ids
    assert sum(d["created"] for d in done) == len(ids)
    assert sum(d["conflicts"] for d in done) > 0 and sum(d["outcomes"] for d in done) > len(ids)
    assert_rows_equal(as_rows(store.aggregates()), recomputed(records, [default_model()]))
    store.close()


def test_workers_opening_a_new_file_at_the_same_moment_all_get_to_write(tmp_path: Path) -> None:
    # Separate store objects have separate connections, which SQLite locks like processes.
    for attempt in range(10):
        path = tmp_path / f"fresh-{attempt}.db"
        stores = [SqliteStore(path) for _ in range(8)]
        start = threading.Barrier(len(stores))

        def first_writes(n: int, stores: list[SqliteStore] = stores, start: threading.Barrier = start) -> None:
            start.wait()
            stores[n].record(make_record(n))
            stores[n].close()

        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(first_writes, range(len(stores))))
        reader = SqliteStore(path)
        assert sorted(r.id for r in reader.list(10).items) == list(range(len(stores)))
        reader.close()


@pytest.mark.slow
def test_a_write_that_returned_survives_kill_9_of_the_writing_process(tmp_path: Path) -> None:
    path = str(tmp_path / "durable.db")
    child = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "tests.storage.sqlite_workers", path],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked = [int(child.stdout.readline()) for _ in range(40)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    store = SqliteStore(path)
    store.check()
    for i in acked:
        assert store.get(i).observation == {"n": i}
    stored = store.list(1000).items
    assert len(stored) >= len(acked)
    store.close()


@pytest.mark.parametrize("where", ["under-a-file", "a-directory"])
def test_a_path_that_cannot_be_opened_raises_storage_error(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "a-directory").mkdir()
    path = tmp_path / "a-file" / "predictions.db" if where == "under-a-file" else tmp_path / "a-directory"
    store = SqliteStore(path)

    with pytest.raises(StorageError):
        store.record(make_record(1))
    with pytest.raises(StorageError):
        store.check()
    with pytest.raises(StorageError):
        store.list(10)


def test_a_file_that_is_not_a_database_raises_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an SQLite database" * 100)

    with pytest.raises(StorageError):
        SqliteStore(path).get(1)


def test_a_batch_that_fails_half_way_leaves_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    store = SqliteStore(path)
    store.check()
    with sqlite3.connect(path) as raw:
        raw.execute(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON predictions WHEN NEW.id_key = '\"boom\"'"
            " BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    raw.close()

    with pytest.raises(StorageError, match="disk says no"):
        store.record_many([make_record("fine"), make_record("boom")])

    with pytest.raises(UnknownPrediction):
        store.get("fine")
    assert store.list(10).items == []
    store.close()


def test_a_write_waiting_past_the_busy_timeout_raises_storage_error_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    store = SqliteStore(path, busy_timeout=0.2)
    store.check()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StorageError, match="locked"):
            store.record(make_record(1))
        assert time.monotonic() - started < 5
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    with pytest.raises(UnknownPrediction):
        store.get(1)
    assert store.record(make_record(1))[1] is True
    store.close()


def test_a_failure_while_adding_counters_rolls_back_the_record_or_the_outcome_too(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    store = SqliteStore(path)
    store.record(make_record(1), {"n": 1})
    failing = sqlite3.connect(path, isolation_level=None)
    for when in ("INSERT", "UPDATE"):
        failing.execute(
            f"CREATE TRIGGER fail_{when} BEFORE {when} ON aggregates BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    failing.close()

    with pytest.raises(StorageError, match="disk full"):
        store.record(make_record(2, {"x": 2}), {"n": 1})
    with pytest.raises(StorageError, match="disk full"):
        store.record_many([make_record(3, {"x": 3}), make_record(4, {"x": 4})], [{"n": 1}, {"n": 1}])
    with pytest.raises(StorageError, match="disk full"):
        store.set_outcome(1, 1, make_record(1).created_at, outcome_counters)

    assert [r.id for r in store.list(10).items] == [1]
    assert store.get(1).true_class is None
    assert [row.counters for row in store.aggregates()] == [{"n": 1}]
    store.close()


def test_a_file_written_before_aggregates_existed_gets_an_empty_aggregates_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    store.record(make_record(1))
    store.close()
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("DROP TABLE aggregates")
    old.execute("DROP TABLE aggregate_totals")
    old.close()

    reopened = SqliteStore(path)
    assert reopened.aggregates() == [] and reopened.aggregate_totals() == {}
    reopened.record(make_record(2, {"x": 2}), {"n": 1})
    assert [row.counters for row in reopened.aggregates()] == [{"n": 1}]
    assert reopened.aggregate_totals() == {"titanic-1": {"n": 1}}
    assert reopened.get(1) == make_record(1)
    reopened.close()


def test_a_file_written_before_the_running_totals_existed_gets_them_summed_from_its_days(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    store.record(make_record(1), {"n": 1, "sum_proba": 0.25})
    store.record(make_record(2, {"x": 2}, at=T0 + timedelta(days=1)), {"n": 1, "lab": 1})
    store.close()
    old = sqlite3.connect(path, isolation_level=None)
    # The file as the previous version wrote it: day rows, no totals and no triggers keeping them.
    old.execute("DROP TABLE aggregate_totals")
    old.execute("DROP TRIGGER aggregates_inserted")
    old.execute("DROP TRIGGER aggregates_updated")
    old.execute("DROP TRIGGER aggregates_deleted")
    old.close()

    reopened = SqliteStore(path)
    assert reopened.aggregate_totals() == {"titanic-1": {"n": 2, "sum_proba": 0.25, "lab": 1}}
    reopened.record(make_record(3, {"x": 3}), {"n": 1})
    assert reopened.aggregate_totals() == {"titanic-1": {"n": 3, "sum_proba": 0.25, "lab": 1}}
    reopened.close()


def test_the_file_is_in_wal_mode_so_readers_do_not_wait_for_writers(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    store = SqliteStore(path)
    store.record(make_record(1))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert blocker.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.get(1) == make_record(1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.close()


def test_reads_go_on_while_a_write_waits_for_another_process_lock(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    store = SqliteStore(path, busy_timeout=10)
    store.record(make_record(1))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(1) as pool:
        waiting_write = pool.submit(store.record, make_record(2))
        time.sleep(0.2)
        assert not waiting_write.done()
        started = time.monotonic()
        assert store.get(1) == make_record(1)
        assert [r.id for r in store.list(10).items] == [1]
        assert time.monotonic() - started < 1
        blocker.execute("ROLLBACK")
        blocker.close()
        assert waiting_write.result(timeout=10) == (make_record(2), True)
    store.close()


def test_an_in_memory_database_is_refused_because_each_connection_would_see_another(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MemoryStore"):
        SqliteStore(":memory:")


def test_writers_committed_together_keep_their_own_outcomes(tmp_path: Path) -> None:
    """Concurrent writes share transactions (group commit); a conflict still fails only its caller."""
    store = SqliteStore(tmp_path / "group.db")
    store.record(make_record("taken", {"v": 0}))
    start = threading.Barrier(24)

    def write(n: int) -> str:
        start.wait(timeout=10)
        try:
            if n % 4 == 0:
                store.record(make_record("taken", {"v": n + 1}))  # a different observation: conflict
            elif n % 4 == 1:
                store.record(make_record("taken", {"v": 0}))  # an exact retry
            else:
                store.record_many([make_record(f"a{n}", {"v": n}), make_record(f"b{n}", {"v": n})])
        except Exception as e:  # noqa: BLE001 - the test counts what each caller got
            return type(e).__name__
        return "ok"

    with ThreadPoolExecutor(24) as pool:
        outcomes = Counter(pool.map(write, range(24)))
    assert outcomes == Counter({"ok": 18, "ConflictingPrediction": 6})
    stored = {r.id for r in store.list(100).items}
    assert stored == {"taken"} | {f"{p}{n}" for n in range(24) if n % 4 >= 2 for p in "ab"}
    assert store.get("taken").observation == {"v": 0}


def test_a_file_made_before_challengers_were_stored_gets_their_column_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    store.record(make_record(1), {"n": 1})
    store.close()
    with sqlite3.connect(path) as conn:  # as the previous version of the schema left it
        conn.execute("ALTER TABLE predictions DROP COLUMN shadows")

    reopened = SqliteStore(path)
    try:
        assert reopened.get(1) == make_record(1)
        assert reopened.record(make_record(2, {"x": 2}, shadows=(ShadowScore("c", 0.5, True),)))[0].shadows
        assert reopened.get(2).shadows == (ShadowScore("c", 0.5, True),)
    finally:
        reopened.close()
