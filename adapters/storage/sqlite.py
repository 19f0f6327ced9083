"""PredictionStore in one SQLite file, shared by the threads and processes of one host."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from adapters.storage import sql
from adapters.storage.base import BadStoreUrl, GroupCommitStore, Job, Results, StoreOptions
from adapters.storage.codec import (
    AggregateKey,
    aggregate_key,
    counters_by_key,
    utc_from_text,
    utc_text,
)
from adapters.storage.sql import COLUMNS
from core import quality
from core.errors import ConflictingPrediction, CoreError, StorageError, UnknownPrediction
from core.ports import AggregateRow, OutcomeCounters
from core.records import (
    Page,
    PredictionId,
    PredictionRecord,
    canonical_json,
    id_from_key,
    id_key,
    shadows_from_json,
    shadows_json,
)

CURSOR_KIND = "sqlite"
DIALECT = sql.Dialect("?", date.isoformat)
EVERY_VERSION = "SELECT DISTINCT model_version FROM aggregate_totals"

SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS predictions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id_key TEXT NOT NULL UNIQUE,
    observation TEXT NOT NULL,
    proba REAL NOT NULL,
    predicted_class INTEGER NOT NULL,
    threshold REAL NOT NULL,
    model_version TEXT NOT NULL,
    true_class INTEGER,
    warnings TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    shadows TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS predictions_by_created_at ON predictions (created_at, seq);
CREATE TABLE IF NOT EXISTS aggregates (
    model_version TEXT NOT NULL,
    day TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (model_version, day, name)
) WITHOUT ROWID;
-- The daily series reads a few counter names over many days. Only new rows touch this index.
CREATE INDEX IF NOT EXISTS aggregates_by_name ON aggregates (name, model_version, day);
-- Every version's counters summed over all days, kept by the triggers below in the same
-- transaction as the day rows: /stats over all days reads a bounded number of rows.
CREATE TABLE IF NOT EXISTS aggregate_totals (
    model_version TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (model_version, name)
) WITHOUT ROWID;
-- A file whose aggregates predate the totals gets them summed once (a new file has neither).
INSERT INTO aggregate_totals (model_version, name, value)
    SELECT model_version, name, SUM(value) FROM aggregates
    WHERE NOT EXISTS (SELECT 1 FROM aggregate_totals) GROUP BY model_version, name;
CREATE TRIGGER IF NOT EXISTS aggregates_inserted AFTER INSERT ON aggregates BEGIN
    INSERT INTO aggregate_totals (model_version, name, value) VALUES (NEW.model_version, NEW.name, NEW.value)
    ON CONFLICT (model_version, name) DO UPDATE SET value = value + excluded.value;
END;
CREATE TRIGGER IF NOT EXISTS aggregates_updated AFTER UPDATE OF value ON aggregates BEGIN
    UPDATE aggregate_totals SET value = value + NEW.value - OLD.value
    WHERE model_version = NEW.model_version AND name = NEW.name;
END;
CREATE TRIGGER IF NOT EXISTS aggregates_deleted AFTER DELETE ON aggregates BEGIN
    UPDATE aggregate_totals SET value = value - OLD.value
    WHERE model_version = OLD.model_version AND name = OLD.name;
END;
COMMIT;
"""
# The last table SCHEMA creates: a file made before it existed gets it on first open.
LAST_TABLE = "aggregate_totals"
ADD_COUNTER = (
    "INSERT INTO aggregates (model_version, day, name, value) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (model_version, day, name) DO UPDATE SET value = value + excluded.value"
)

Row = tuple[Any, ...]


class SqliteStore(GroupCommitStore):
    """A PredictionStore in one SQLite file, safe for many threads and processes on one host.

    Every write is one `BEGIN IMMEDIATE` transaction, so a failed write leaves nothing behind and
    concurrent writers (threads, uvicorn workers) queue on SQLite's lock for up to
    `busy_timeout` seconds. The file is in WAL mode, so readers never wait for a writer, with
    `synchronous=FULL`, so a write that returned survives a crash of the process or the host.

    Each process opens two connections: one for reads and one for writes, each used by one
    thread at a time behind its own lock. Measured on 2 cores, this beats a pool of connections
    used in parallel (threads only fight over the GIL: 1.6x the read throughput with 4-8
    threads), and unlike one shared connection, reads go on while a write waits for another
    process's lock. Schema: `seq` (autoincrement, the tie-break of `created_at` in listings)
    is the rowid and `id_key` (keeps 1 and "1" apart) is unique.

    Aggregates: table `aggregates` holds one row per (model version, UTC day, counter name).
    A write adds its counters with an upsert (`value = value + excluded.value`) inside the
    same `BEGIN IMMEDIATE` transaction as the record, so both are committed or neither; and
    `set_outcome` reads the old outcome inside that transaction too, so concurrent outcomes
    for one prediction are serialised by SQLite's write lock. Counts are whole numbers in REAL
    columns, exact below 2**53. Table `aggregate_totals` holds each version's counters summed
    over all days, kept by triggers on `aggregates` within the same transaction, so /stats over
    all days reads at most versions × counter names rows however many days and predictions
    there are. A file written before the tables existed gets them on first open (the totals
    summed from its day rows); run `python -m adapters.repair_aggregates` once to fill them
    when the file also predates the day rows.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        if self.path in ("", ":memory:"):
            raise ValueError(
                "SqliteStore needs a file (each connection to ':memory:' is another, empty database);"
                " use MemoryStore"
            )
        super().__init__()
        self._busy_timeout = busy_timeout
        self._reader = _Slot()
        self._writer = _Slot()
        self._lock_fd = -1
        self._lock_pid = -1

    def _values(self, record: PredictionRecord) -> Row:
        return _values(record)

    def _commit(self, batch: list[Job]) -> None:
        outcomes: list[tuple[Results | None, Exception | None]] = []
        with self._write() as conn:
            # Counters of the jobs that succeed, summed: one upsert per counter per batch.
            added: dict[AggregateKey, quality.Counters] = {}
            for job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    results, job_added = self._write_job(conn, job)
                except CoreError as e:  # a conflict: this job only
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((None, e))
                    continue
                conn.execute("RELEASE job")
                for key, counters in job_added.items():
                    quality.add(added.setdefault(key, {}), counters)
                outcomes.append((results, None))
            _add_counters(conn, added)
        for job, (job_results, error) in zip(batch, outcomes):
            job.settle(job_results, error)

    def _write_job(
        self, conn: sqlite3.Connection, job: Job
    ) -> tuple[Results, dict[AggregateKey, quality.Counters]]:
        """Insert one job's records; return the results and the counters of the records it created."""
        added: dict[AggregateKey, quality.Counters] = {}
        results = []
        for record, row, record_counters in zip(job.records, job.values, job.counters):
            stored, created = self._insert(conn, record, row)
            if created and record_counters:
                quality.add(added.setdefault((row[5], row[8][:10]), {}), record_counters)
            results.append((stored, created))
        return results, added

    def set_outcome(
        self, prediction_id: PredictionId, true_class: int, now: datetime, counters: OutcomeCounters | None = None
    ) -> PredictionRecord:
        key = id_key(prediction_id)
        updated_at = utc_text(now)
        with self._commit_lock, self._write() as conn:
            row = conn.execute(f"SELECT {COLUMNS} FROM predictions WHERE id_key = ?", (key,)).fetchone()
            if row is None:
                raise UnknownPrediction(prediction_id)
            old = _record(row)
            conn.execute(
                "UPDATE predictions SET true_class = ?, updated_at = ? WHERE id_key = ?",
                (int(true_class), updated_at, key),
            )
            if counters:
                _add_counters(conn, {aggregate_key(old): counters(old, int(true_class))})
        return old.with_outcome(int(true_class), utc_from_text(updated_at))

    def aggregates(
        self,
        model_version: str | None = None,
        since: date | None = None,
        until: date | None = None,
        names: Collection[str] | None = None,
    ) -> list[AggregateRow]:
        # Left to itself, the planner walks every counter of the days when a version is given.
        table = "aggregates" if names is None else "aggregates INDEXED BY aggregates_by_name"
        query, params = sql.aggregates_query(DIALECT, model_version, since, until, names, table)
        with self._use(self._reader) as conn:
            return sql.aggregate_rows(conn.execute(query, params).fetchall())

    def aggregate_totals(
        self, model_version: str | None = None, since: date | None = None, until: date | None = None
    ) -> dict[str, dict[str, float]]:
        # Over a range of days and all versions, each version's days as a range of the primary
        # key (version, day, name): left to itself, the planner walks every counter of every day
        # (4.5x slower at 1M rows).
        hint = "" if model_version is not None else f" AND model_version IN ({EVERY_VERSION})"
        query, params = sql.totals_query(DIALECT, model_version, since, until, hint)
        with self._use(self._reader) as conn:
            return sql.totals(conn.execute(query, params).fetchall())

    def replace_aggregates(self, rows: Sequence[AggregateRow]) -> None:
        fresh = counters_by_key(rows)
        with self._commit_lock, self._write() as conn:
            conn.execute("DELETE FROM aggregates")
            # The triggers leave zeros (or a float sum's rounding) behind: start the totals afresh.
            conn.execute("DELETE FROM aggregate_totals")
            _add_counters(conn, fresh)

    def get(self, prediction_id: PredictionId) -> PredictionRecord:
        with self._use(self._reader) as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM predictions WHERE id_key = ?", (id_key(prediction_id),)
            ).fetchone()
        if row is None:
            raise UnknownPrediction(prediction_id)
        return _record(row)

    def list(self, limit: int, cursor: str | None = None) -> Page:
        query, params = sql.listing_query(DIALECT, CURSOR_KIND, limit, cursor)
        with self._use(self._reader) as conn:
            rows = conn.execute(query, params).fetchall()
        return sql.listing_page(rows, limit, CURSOR_KIND, _record)

    def check(self) -> None:
        """StorageError unless the store can take a write: one committed write of one row, so a
        full disk, a read-only file or directory, or a lock file that cannot be opened shows here."""
        with self._commit_lock, self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS store_checks"
                " (id INTEGER PRIMARY KEY CHECK (id = 1), checks INTEGER NOT NULL)"
            )
            conn.execute(
                "INSERT INTO store_checks (id, checks) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET checks = checks + 1"
            )

    def close(self) -> None:
        """Close this process's connections and lock file; the store opens new ones if it is used again."""
        for slot in (self._reader, self._writer):
            with slot.lock:
                if slot.conn is not None and slot.pid == os.getpid():
                    slot.conn.close()
                slot.conn = None
        with self._commit_lock:
            if self._lock_pid == os.getpid():
                os.close(self._lock_fd)
            self._lock_fd, self._lock_pid = -1, -1

    @staticmethod
    def _insert(conn: sqlite3.Connection, record: PredictionRecord, row: Row) -> tuple[PredictionRecord, bool]:
        # New ids are the common case: try the insert first, read the stored row only when it exists.
        inserted = conn.execute(
            f"INSERT INTO predictions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id_key) DO NOTHING",
            row,
        ).rowcount
        if inserted:
            return _record(row), True
        existing = conn.execute(f"SELECT {COLUMNS} FROM predictions WHERE id_key = ?", (row[0],)).fetchone()
        stored = _record(existing)
        if not stored.same_request(record):
            raise ConflictingPrediction(record.id)
        return stored, False

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._use(self._writer) as conn, self._host_lock():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    @contextmanager
    def _host_lock(self) -> Iterator[None]:
        """Queue this host's writers on a kernel lock before SQLite's.

        A writer that finds SQLite's lock taken sleeps in SQLite's busy handler, in steps of up
        to 100 ms, whatever happens meanwhile; the kernel wakes a writer blocked in flock() as
        soon as the lock is released. With several uvicorn workers this is the difference
        between a queue and a lottery. SQLite's busy timeout stays as the bound for writers
        that do not take this lock.
        """
        try:
            if self._lock_pid != os.getpid():
                # A forked child needs its own open file: flock() locks belong to the open file.
                self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
                self._lock_pid = os.getpid()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        except OSError as e:  # a read-only lock file or directory, a path that is not a directory
            raise StorageError(f"cannot lock SQLite store {self.path!r} ({self.path}.lock): {e}") from e
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def _use(self, slot: _Slot) -> Iterator[sqlite3.Connection]:
        """The slot's connection, for this thread alone; sqlite3 errors become StorageError."""
        with slot.lock:
            if slot.pid != os.getpid():
                # A forked child must not use its parent's connection (SQLite forbids it).
                slot.conn, slot.pid = None, os.getpid()
            if slot.conn is None:
                try:
                    slot.conn = self._open()
                except sqlite3.Error as e:
                    raise StorageError(f"cannot open SQLite store {self.path!r}: {e}") from e
            conn = slot.conn
            try:
                yield conn
            except sqlite3.Error as e:
                # Start afresh next time: the connection may be what is broken.
                slot.conn = None
                conn.close()
                raise StorageError(f"SQLite store {self.path!r} failed: {e}") from e

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: the module never opens transactions behind our back.
        # check_same_thread=False: a slot's lock already ensures one thread at a time.
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (LAST_TABLE,)).fetchall():
                try:
                    conn.executescript(SCHEMA)
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            if not _has_column(conn, "predictions", "shadows"):
                _add_shadows_column(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        # Turning a new file to WAL needs it to itself, and SQLite reports "locked" at once
        # instead of calling the busy handler: so workers starting together wait here.
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.001
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as e:
                if e.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)


class _Slot:
    """One connection of a process, used by one thread at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: sqlite3.Connection | None = None
        self.pid = os.getpid()


def _add_counters(conn: sqlite3.Connection, added: Mapping[AggregateKey, Mapping[str, float]]) -> None:
    conn.executemany(
        ADD_COUNTER,
        [
            (version, day, name, float(value))
            for (version, day), counters in added.items()
            for name, value in counters.items()
            if value
        ],
    )


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})").fetchall())


def _add_shadows_column(conn: sqlite3.Connection) -> None:
    """A file made before the challengers' scores were stored gets their column (empty lists)."""
    conn.execute("BEGIN IMMEDIATE")  # processes opening an old file together: one adds it
    try:
        if not _has_column(conn, "predictions", "shadows"):
            conn.execute("ALTER TABLE predictions ADD COLUMN shadows TEXT NOT NULL DEFAULT '[]'")
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _values(record: PredictionRecord) -> Row:
    return (
        id_key(record.id),
        canonical_json(record.observation),
        float(record.proba),
        int(bool(record.predicted_class)),
        float(record.threshold),
        record.model_version,
        None if record.true_class is None else int(record.true_class),
        canonical_json(list(record.warnings)),
        utc_text(record.created_at),
        utc_text(record.updated_at),
        shadows_json(record.shadows),
    )


def _record(row: Row) -> PredictionRecord:
    key, observation, proba, predicted, threshold, version, true_class, warnings, created_at, updated_at, shadows = row
    return PredictionRecord(
        id=id_from_key(key),
        observation=json.loads(observation),
        proba=proba,
        predicted_class=bool(predicted),
        threshold=threshold,
        model_version=version,
        created_at=utc_from_text(created_at),
        updated_at=utc_from_text(updated_at),
        true_class=true_class,
        warnings=tuple(json.loads(warnings)),
        shadows=shadows_from_json(shadows),
    )


def open_url(url: str, options: StoreOptions) -> SqliteStore:
    """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db`: one file on this host."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise BadStoreUrl("a SQLite URL is sqlite:/// and a file path (three slashes: relative, four: absolute)")
    path = url[len(prefix):]
    return SqliteStore(path)
