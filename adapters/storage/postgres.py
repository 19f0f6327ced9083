"""PredictionStore in PostgreSQL (Heroku Postgres among others), through psycopg 3 and its pool."""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from adapters.storage import sql
from adapters.storage.base import BadStoreUrl, GroupCommitStore, Job, Results, StoreOptions
from adapters.storage.codec import (
    AggregateKey,
    aggregate_key,
    counters_by_key,
    utc,
)
from adapters.storage.secrets import scrubbed
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

logger = logging.getLogger("sklearn_serve.storage")
T = TypeVar("T")

CURSOR_KIND = "postgres"
DIALECT = sql.Dialect("%s", lambda day: day)
LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})
# The key of the advisory lock under which a process creates or migrates the schema (any fixed
# 64-bit number no other application on the database uses: "sklserve" in ASCII).
SCHEMA_LOCK = 0x736B6C7365727665
# Schema migrations in order: each is applied once, under the lock, in one transaction with its
# row in schema_migrations. A later change appends a migration; nothing is ever dropped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS predictions (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id_key text NOT NULL UNIQUE,
            observation json NOT NULL,
            proba double precision NOT NULL,
            predicted_class boolean NOT NULL,
            threshold double precision NOT NULL,
            model_version text NOT NULL,
            true_class smallint CHECK (true_class IN (0, 1)),
            warnings json NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS predictions_by_created_at ON predictions (created_at, seq)",
        """CREATE TABLE IF NOT EXISTS aggregates (
            model_version text NOT NULL,
            day date NOT NULL,
            name text NOT NULL,
            value double precision NOT NULL,
            PRIMARY KEY (model_version, day, name)
        )""",
        # The daily series reads a few counter names over many days.
        "CREATE INDEX IF NOT EXISTS aggregates_by_name ON aggregates (name, model_version, day)",
        """CREATE TABLE IF NOT EXISTS aggregate_totals (
            model_version text NOT NULL,
            name text NOT NULL,
            value double precision NOT NULL,
            PRIMARY KEY (model_version, name)
        )""",
        """CREATE TABLE IF NOT EXISTS store_checks (
            id integer PRIMARY KEY CHECK (id = 1),
            checks bigint NOT NULL
        )""",
    ),
    # 2: the challengers' scores of each prediction (SHADOW_MODEL_DIRS).
    ("ALTER TABLE predictions ADD COLUMN IF NOT EXISTS shadows json NOT NULL DEFAULT '[]'",),
)
SCHEMA_VERSION = len(MIGRATIONS)

INSERT = (
    f"INSERT INTO predictions ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (id_key) DO NOTHING"
)
# Many records in one statement (one array per column): the query text, and so its prepared plan,
# is the same whatever the number of rows.
INSERT_MANY = (
    f"INSERT INTO predictions ({COLUMNS})"
    " SELECT k, o::json, p, c, t, v, y, w::json, ca, ua, s::json FROM unnest(%s::text[], %s::text[], %s::float8[],"
    " %s::bool[], %s::float8[], %s::text[], %s::int2[], %s::text[], %s::timestamptz[], %s::timestamptz[],"
    " %s::text[]) AS r(k, o, p, c, t, v, y, w, ca, ua, s)"
    " ON CONFLICT (id_key) DO NOTHING RETURNING id_key"
)
# Counters are upserted in (version, day, name) order, totals in (version, name) order, by
# every write: concurrent writers lock the same rows in the same order and never deadlock.
ADD_COUNTERS = (
    "INSERT INTO aggregates (model_version, day, name, value)"
    " SELECT * FROM unnest(%s::text[], %s::date[], %s::text[], %s::float8[])"
    " ON CONFLICT (model_version, day, name) DO UPDATE SET value = aggregates.value + excluded.value"
)
ADD_TOTALS = (
    "INSERT INTO aggregate_totals (model_version, name, value)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::float8[])"
    " ON CONFLICT (model_version, name) DO UPDATE SET value = aggregate_totals.value + excluded.value"
)
# The server ended the session (shutdown, restart, crash recovery, a terminated backend).
SERVER_GONE = frozenset({"57P01", "57P02", "57P03"})
# Longest pause (seconds, times the attempt) before a transaction cancelled by a deadlock is retried.
RETRY_PAUSE = 0.02
# A transaction cancelled for a deadlock or a serialization failure is tried again from the start.
TRANSACTION_ATTEMPTS = 5
Row = tuple[Any, ...]
Outcome = tuple[Results | None, Exception | None]


class _NotAllNew(Exception):
    """Rolls back the one-statement write of a batch that holds a record already stored."""


class PostgresStore(GroupCommitStore):
    """A PredictionStore in one PostgreSQL database, shared by every worker of every dyno.

    Writes. Every write is one transaction holding the records and their counters, so both are
    committed or neither. Records go in with `INSERT ... ON CONFLICT (id_key) DO NOTHING`: a
    unique `id_key` (keeps 1 and "1" apart) makes a retry find the stored row, compared as
    `same_request`. Counters are added with `INSERT ... ON CONFLICT DO UPDATE SET value = value
    + excluded.value` to `aggregates` (one row per version, UTC day and counter) and to
    `aggregate_totals` (per version and counter, over all days: /stats over all days reads a
    bounded number of rows), last in the transaction and in key order. As on SQLite, the writes
    waiting in one process at one moment share one transaction and one commit (group commit):
    when all their records are new (the common case), one INSERT from arrays and the counter
    upserts, pipelined; else a savepoint per write keeps each all or nothing. `set_outcome`
    locks the record (`SELECT ... FOR UPDATE`) so concurrent outcomes of one prediction are
    serialised. A transaction cancelled by a deadlock is tried again after a short random pause.

    Connections. A psycopg_pool ConnectionPool per process (a forked worker opens its own), at
    most `pool_size` connections, opened on first use; every connection has a
    `statement_timeout`, TCP keepalives and a `tcp_user_timeout`, and a request waits at most
    the larger of the statement and connect timeouts for a free connection. A connection the
    server dropped (a restart, a failover) is replaced: a statement that fails on it is tried
    again on a fresh one after the pool has checked its idle ones, which is safe because every
    write is idempotent (a record already stored is found as a retry; an outcome set again adds
    nothing; a retried write whose first COMMIT did land answers `created=False`). Any other
    failure is a StorageError naming the server, never the password.

    SSL: `sslmode` in the URL is honoured; without it, a server on this host is reached as libpq
    would (`prefer`) and any other with `sslmode=require` (Heroku's URLs carry none and need it).

    Schema: created on first use, under a transaction-level advisory lock so that dynos and
    workers starting together queue instead of racing, and versioned in `schema_migrations`.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        statement_timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self._url = url
        self._conninfo = connection_string(url, statement_timeout, connect_timeout)
        params = conninfo_to_dict(self._conninfo)
        host = params.get("host") or params.get("hostaddr") or "localhost"
        self.where = self._scrub(f"{host}:{params.get('port') or 5432}/{params.get('dbname', '')}")
        self._pool_size = pool_size
        # Waiting for a connection includes opening one: never less than the connect timeout.
        self._wait = max(statement_timeout, connect_timeout)
        self._diagnosis_lock = threading.Lock()  # see _no_connection
        self._pool: ConnectionPool | None = None
        self._in_use = 0  # connections of this process's pool given to callers now
        self._pool_pid = -1
        self._pool_lock = threading.Lock()
        self._schema_ready = False

    # Writes

    def _values(self, record: PredictionRecord) -> Row:
        return (
            id_key(record.id),
            canonical_json(record.observation),
            float(record.proba),
            bool(record.predicted_class),
            float(record.threshold),
            record.model_version,
            None if record.true_class is None else int(record.true_class),
            canonical_json(list(record.warnings)),
            utc(record.created_at),
            utc(record.updated_at),
            shadows_json(record.shadows),
        )

    def _commit(self, batch: list[Job]) -> None:
        outcomes = self._run("write", lambda conn: self._write_all_new(conn, batch))
        if outcomes is None:  # some id was already stored: each job on its own, in a savepoint
            outcomes = self._run("write", lambda conn: self._write_each(conn, batch))
        for job, (results, error) in zip(batch, outcomes):
            job.settle(results, error)

    def _write_all_new(self, conn: psycopg.Connection[Any], batch: list[Job]) -> list[Outcome] | None:
        """The common case in one statement of each kind: every record is new. None, and nothing
        written, when one is not (a retry, a conflict, an id repeated across jobs)."""
        # In id order, as writes take their rows: writers of the same new ids queue, not deadlock.
        rows = sorted((row for job in batch for row in job.values), key=itemgetter(0))
        added: dict[AggregateKey, quality.Counters] = {}
        for job in batch:
            for record, counters in zip(job.records, job.counters):
                if counters:
                    quality.add(added.setdefault(aggregate_key(record), {}), counters)
        try:
            # Pipeline mode: the statements go out together and the counters are added before the
            # insert's answer is read (one round trip instead of four); if a record was not new,
            # the rollback takes them back.
            with conn.pipeline(), conn.transaction():
                inserting = conn.execute(INSERT_MANY, [list(column) for column in zip(*rows)])
                _add_counters(conn, added)
                if len(inserting.fetchall()) != len(rows):
                    raise _NotAllNew
        except _NotAllNew:
            return None
        return [([(_record(row), True) for row in job.values], None) for job in batch]

    def _write_each(self, conn: psycopg.Connection[Any], batch: list[Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        added: dict[AggregateKey, quality.Counters] = {}
        with conn.transaction():
            for job in batch:
                try:
                    with conn.transaction():  # a savepoint: a conflict undoes this job only
                        results, job_added = self._write_job(conn, job)
                except CoreError as e:
                    outcomes.append((None, e))
                    continue
                for key, counters in job_added.items():
                    quality.add(added.setdefault(key, {}), counters)
                outcomes.append((results, None))
            _add_counters(conn, added)
        return outcomes

    def _write_job(
        self, conn: psycopg.Connection[Any], job: Job
    ) -> tuple[Results, dict[AggregateKey, quality.Counters]]:
        added: dict[AggregateKey, quality.Counters] = {}
        answers: dict[int, tuple[PredictionRecord, bool]] = {}
        for n in sorted(range(len(job.values)), key=lambda n: job.values[n][0]):  # in id order, as above
            record, row, record_counters = job.records[n], job.values[n], job.counters[n]
            if conn.execute(INSERT, row).rowcount:
                stored, created = _record(row), True
            else:
                existing = conn.execute(f"SELECT {COLUMNS} FROM predictions WHERE id_key = %s", (row[0],)).fetchone()
                if existing is None:  # deleted meanwhile: nothing does, but say so rather than crash
                    raise StorageError(f"PostgreSQL: prediction {record.id!r} vanished while being read back")
                stored, created = _record(existing), False
                if not stored.same_request(record):
                    raise ConflictingPrediction(record.id)
            if created and record_counters:
                quality.add(added.setdefault(aggregate_key(stored), {}), record_counters)
            answers[n] = (stored, created)
        return [answers[n] for n in range(len(job.values))], added

    def set_outcome(
        self, prediction_id: PredictionId, true_class: int, now: datetime, counters: OutcomeCounters | None = None
    ) -> PredictionRecord:
        key, new, updated_at = id_key(prediction_id), int(true_class), utc(now)

        def write(conn: psycopg.Connection[Any]) -> PredictionRecord:
            with conn.transaction():
                row = conn.execute(
                    f"SELECT {COLUMNS} FROM predictions WHERE id_key = %s FOR UPDATE", (key,)
                ).fetchone()
                if row is None:
                    raise UnknownPrediction(prediction_id)
                old = _record(row)
                conn.execute(
                    "UPDATE predictions SET true_class = %s, updated_at = %s WHERE id_key = %s", (new, updated_at, key)
                )
                if counters:
                    _add_counters(conn, {aggregate_key(old): counters(old, new)})
            return old.with_outcome(new, updated_at)

        return self._run("set outcome", write)

    def replace_aggregates(self, rows: Sequence[AggregateRow]) -> None:
        fresh = counters_by_key(rows)

        def write(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute("DELETE FROM aggregates")
                conn.execute("DELETE FROM aggregate_totals")
                _add_counters(conn, fresh)

        self._run("replace aggregates", write)

    def check(self) -> None:
        """StorageError unless the database takes a write: one committed upsert of a row of its own."""

        def write(conn: psycopg.Connection[Any]) -> None:
            conn.execute(
                "INSERT INTO store_checks (id, checks) VALUES (1, 1)"
                " ON CONFLICT (id) DO UPDATE SET checks = store_checks.checks + 1"
            )

        self._run("check", write)

    # Reads

    def aggregates(
        self,
        model_version: str | None = None,
        since: date | None = None,
        until: date | None = None,
        names: Collection[str] | None = None,
    ) -> list[AggregateRow]:
        query, params = sql.aggregates_query(DIALECT, model_version, since, until, names)
        return sql.aggregate_rows(self._run("read aggregates", lambda conn: conn.execute(query, params).fetchall()))

    def aggregate_totals(
        self, model_version: str | None = None, since: date | None = None, until: date | None = None
    ) -> dict[str, dict[str, float]]:
        query, params = sql.totals_query(DIALECT, model_version, since, until)
        return sql.totals(self._run("read totals", lambda conn: conn.execute(query, params).fetchall()))

    def get(self, prediction_id: PredictionId) -> PredictionRecord:
        def read(conn: psycopg.Connection[Any]) -> Row | None:
            return conn.execute(  # type: ignore[no-any-return]
                f"SELECT {COLUMNS} FROM predictions WHERE id_key = %s", (id_key(prediction_id),)
            ).fetchone()

        row = self._run("get", read)
        if row is None:
            raise UnknownPrediction(prediction_id)
        return _record(row)

    def list(self, limit: int, cursor: str | None = None) -> Page:
        query, params = sql.listing_query(DIALECT, CURSOR_KIND, limit, cursor, "::timestamptz")
        rows = self._run("list", lambda conn: conn.execute(query, params).fetchall())
        return sql.listing_page(rows, limit, CURSOR_KIND, _record)

    # Connections

    def close(self) -> None:
        """Close this process's pool; the store opens a new one if it is used again."""
        with self._pool_lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.close()
            self._pool, self._pool_pid = None, -1

    def _run(self, action: str, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`work` on a connection of the pool, as told in the class docstring; StorageError for any failure."""
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                with self._connection() as conn:
                    try:
                        return work(conn)
                    except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
                        if attempt == TRANSACTION_ATTEMPTS:
                            raise
                        dropped = False
                        # Apart, so that the writers that met do not meet again at once.
                        time.sleep(random.uniform(0, RETRY_PAUSE * attempt))
                    except psycopg.OperationalError as e:
                        if not (conn.broken or e.sqlstate in SERVER_GONE) or attempt == TRANSACTION_ATTEMPTS:
                            raise
                        dropped = True
                if dropped:  # the server went away: whatever else the pool holds is dead too
                    self._pool_of_this_process().check()
                logger.info("PostgreSQL %s: %s cancelled (%s), trying again", self.where, action,
                            "connection lost" if dropped else "deadlock or serialization failure")
            except PoolTimeout:
                pool = self._pool
                reason = self._scrub(self._no_connection())
                if self._pool is not pool and attempt < TRANSACTION_ATTEMPTS:
                    continue  # the server is back and the pool was replaced: try on the new one
                raise StorageError(f"PostgreSQL {self.where}: {action} failed: {reason}") from None
            except psycopg.Error as e:
                raise StorageError(f"PostgreSQL {self.where}: {action} failed: {self._scrub(_reason(e))}") from e
        raise AssertionError("unreachable: the last attempt returns or raises")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool_of_this_process().connection(timeout=self._wait) as conn:
            with self._pool_lock:
                self._in_use += 1
            try:
                if not self._schema_ready:
                    self._create_schema(conn)
                yield conn
            finally:
                with self._pool_lock:
                    self._in_use -= 1

    def _pool_of_this_process(self) -> ConnectionPool:
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                # A forked child must not share its parent's sockets or pool threads.
                self._pool = ConnectionPool(
                    self._conninfo,
                    min_size=1,
                    max_size=self._pool_size,
                    kwargs={"autocommit": True},
                    timeout=self._wait,
                    name=f"sklearn-serve-{os.getpid()}",
                    open=False,
                )
                self._pool.open(wait=False)
                if self._pool_pid != os.getpid():
                    self._pool_pid, self._in_use = os.getpid(), 0
            return self._pool

    def _create_schema(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            # A migration may take longer than a request's statement, and so may waiting for
            # the process that runs one.
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise StorageError(
                    f"PostgreSQL {self.where}: the schema is at version {current}, newer than this service's "
                    f"{SCHEMA_VERSION}: deploy the version of the service that migrated it"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        self._schema_ready = True

    def _no_connection(self) -> str:
        """Why the pool had no connection to give: the error of one connection tried now.

        One such connection at a time per process (failing requests queue for it), so that an
        outage or a full server costs at most one connection beyond the pool's budget. When it
        opens, the server is back while the pool may still be waiting out its reconnection
        backoff (up to minutes after a long outage): the pool is replaced, unless its
        connections are all in use (then the pool is merely too small for the load).
        """
        with self._diagnosis_lock:
            try:
                psycopg.connect(self._conninfo).close()
            except psycopg.Error as e:
                return _reason(e)
            with self._pool_lock:
                if self._pool is not None and self._pool_pid == os.getpid() and self._in_use < self._pool_size:
                    self._pool.close(timeout=0)
                    self._pool = None
            return (f"no connection of this worker's pool (DATABASE_POOL_SIZE={self._pool_size}) was free "
                    f"within {self._wait:g} s")

    def _scrub(self, text: str) -> str:
        return scrubbed(text, self._url)


def connection_string(url: str, statement_timeout: float, connect_timeout: float) -> str:
    """libpq's connection string for `url`: its own settings, then SSL, timeouts and names."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise BadStoreUrl(f"libpq cannot read it as a PostgreSQL URL ({_reason(e)})") from None
    extra: dict[str, Any] = {}
    host = str(params.get("host") or params.get("hostaddr") or "")
    if "sslmode" not in params and host not in LOCAL_HOSTS:
        extra["sslmode"] = "require"
    if "connect_timeout" not in params:
        extra["connect_timeout"] = max(1, round(connect_timeout))
    if "application_name" not in params:
        extra["application_name"] = "sklearn-serve"
    # A server or network that stops answering: statement_timeout is the server's, so the
    # client gives up on unacknowledged data after tcp_user_timeout and probes idle connections.
    extra.setdefault("keepalives", 1)
    for name, value in (("keepalives_idle", 30), ("keepalives_interval", 10), ("keepalives_count", 3),
                        ("tcp_user_timeout", round((statement_timeout + connect_timeout) * 1000))):
        if name not in params:
            extra[name] = value
    ms = round(statement_timeout * 1000)
    # Times in UTC; a statement or a transaction left idle cannot hold locks for long.
    extra["options"] = " ".join(
        filter(None, [str(params.get("options", "")), f"-c statement_timeout={ms}", "-c TimeZone=UTC",
                      f"-c idle_in_transaction_session_timeout={max(ms * 4, 60000)}"])
    )
    return make_conninfo(url, **extra)


def _reason(error: psycopg.Error) -> str:
    """psycopg's message on one line, with a hint for the refusals Heroku users meet."""
    text = " ".join(str(error).split())
    if error.sqlstate == "53300" or "too many clients" in text or "too many connections" in text:
        return (f"{text} (the connection limit is reached: dynos × WEB_CONCURRENCY × DATABASE_POOL_SIZE "
                "must fit the plan's limit; lower DATABASE_POOL_SIZE or WEB_CONCURRENCY)")
    return text


def _add_counters(conn: psycopg.Connection[Any], added: Mapping[AggregateKey, Mapping[str, float]]) -> None:
    rows = sorted(
        (version, day, name, float(value))
        for (version, day), counters in added.items()
        for name, value in counters.items()
        if value
    )
    if not rows:
        return
    versions, days, names, values = (list(column) for column in zip(*rows))
    conn.execute(ADD_COUNTERS, (versions, days, names, values))
    totals: dict[tuple[str, str], float] = {}
    for version, _, name, value in rows:
        totals[(version, name)] = totals.get((version, name), 0.0) + value
    ordered = sorted(totals.items())
    conn.execute(
        ADD_TOTALS,
        ([v for (v, _), _ in ordered], [n for (_, n), _ in ordered], [value for _, value in ordered]),
    )


def _record(row: Row) -> PredictionRecord:
    key, observation, proba, predicted, threshold, version, true_class, warnings, created_at, updated_at, shadows = row
    return PredictionRecord(
        id=id_from_key(key),
        observation=json.loads(observation) if isinstance(observation, str) else observation,
        proba=proba,
        predicted_class=bool(predicted),
        threshold=threshold,
        model_version=version,
        created_at=created_at.astimezone(UTC),
        updated_at=updated_at.astimezone(UTC),
        true_class=true_class,
        warnings=tuple(json.loads(warnings) if isinstance(warnings, str) else warnings),
        shadows=shadows_from_json(shadows),
    )


def open_url(url: str, options: StoreOptions) -> PostgresStore:
    """`postgresql://user:password@host:port/database` (or `postgres://`, as Heroku writes it)."""
    return PostgresStore(
        url,
        pool_size=options.pool_size,
        statement_timeout=options.statement_timeout,
        connect_timeout=options.connect_timeout,
    )
