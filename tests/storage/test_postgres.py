"""What only the PostgreSQL store promises: its URL and connection settings, a schema created
safely by many processes at once, clear failures (limits, timeouts, restarts), exact counters
under concurrent writers. Against a real server the tests start (tests/postgres_server.py)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from adapters.bootstrap import build_service
from adapters.settings import ConfigurationError, Settings
from adapters.storage.base import StoreOptions
from adapters.storage.postgres import SCHEMA_VERSION, PostgresStore, connection_string
from adapters.storage.secrets import redacted
from adapters.storage.url import open_store
from core import quality
from core.errors import ConflictingPrediction, StorageError
from core.quality import outcome_counters
from core.records import ShadowScore
from tests.postgres_server import PostgresServer
from tests.storage.aggregate_checks import all_records, assert_totals_equal
from tests.storage.records import T0, make_record


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_url)
    yield opened
    opened.close()


# URLs and settings: no server needed


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_both_schemes_open_a_postgres_store_without_connecting(scheme: str) -> None:
    store = open_store(f"{scheme}://app:secret@db.example.com:5432/predictions")

    assert isinstance(store, PostgresStore)
    assert store.where == "db.example.com:5432/predictions"


def test_a_remote_server_without_sslmode_is_reached_with_sslmode_require() -> None:
    params = conninfo_to_dict(connection_string("postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com/d", 5, 5))

    assert params["sslmode"] == "require"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_server_on_this_host_is_reached_as_libpq_would(host: str) -> None:
    assert "sslmode" not in conninfo_to_dict(connection_string(f"postgresql://u@{host}/d", 5, 5))


def test_the_urls_sslmode_is_honoured() -> None:
    params = conninfo_to_dict(connection_string("postgresql://u@db.example.com/d?sslmode=verify-full", 5, 5))

    assert params["sslmode"] == "verify-full"


def test_every_connection_gets_the_statement_timeout_and_utc() -> None:
    options = conninfo_to_dict(connection_string("postgresql://u@db.example.com/d", 2.5, 5))["options"]

    assert "-c statement_timeout=2500" in options
    assert "-c TimeZone=UTC" in options


def test_database_url_is_the_store_when_store_url_is_unset() -> None:
    heroku = Settings.from_env({"DATABASE_URL": "postgres://u:p@db.example.com:5432/d"})
    chosen = Settings.from_env({"DATABASE_URL": "postgres://u:p@db.example.com/d", "STORE_URL": "memory://"})

    assert (heroku.store_url, heroku.store_url_variable) == ("postgres://u:p@db.example.com:5432/d", "DATABASE_URL")
    assert (chosen.store_url, chosen.store_url_variable) == ("memory://", "STORE_URL")
    assert Settings.from_env({}).store_url == "sqlite:///predictions.db"


def test_pool_size_and_statement_timeout_are_settings_with_bounds() -> None:
    settings = Settings.from_env({"DATABASE_POOL_SIZE": "7", "DATABASE_STATEMENT_TIMEOUT": "3"})

    assert settings.store_options == StoreOptions(pool_size=7, statement_timeout=3.0)
    with pytest.raises(ConfigurationError, match="DATABASE_POOL_SIZE"):
        Settings.from_env({"DATABASE_POOL_SIZE": "0"})
    with pytest.raises(ConfigurationError, match="DATABASE_STATEMENT_TIMEOUT"):
        Settings.from_env({"DATABASE_STATEMENT_TIMEOUT": "forever"})


@pytest.mark.parametrize(
    "url",
    [
        "postgres://app:hunter2@db.example.com:5432/d",
        "postgres://app:hun#ter2@db.example.com/d",  # libpq takes '#' and '?' in a password, urlsplit does not
        "postgres://app:hun?ter2@db.example.com/d",
        "postgres://app:hun%ter2@db.example.com/d",  # a bad escape that libpq quotes in its error
        "postgres://app:hun/ter2@db.example.com/d",  # libpq reads part of it as the port
        "postgres://app@db.example.com/d?password=hunter2",
        "postgres://app:hunter2@[::1/d",  # a bad IPv6 host: libpq's error quotes the whole URL
    ],
)
def test_the_password_is_never_shown(url: str) -> None:
    secret = "hunter2" if "hunter2" in url else "ter2"

    assert secret not in str(redacted(url))
    assert secret not in repr(Settings.from_env({"DATABASE_URL": url}))
    try:
        store = open_store(url)
    except ValueError as e:
        assert secret not in str(e) and secret not in getattr(e, "problem", "")
    else:
        assert isinstance(store, PostgresStore) and secret not in store.where


@pytest.mark.parametrize("password", ["hunter2", "hun#ter2", "hun?ter2"])
def test_a_server_that_cannot_be_reached_is_a_storage_error_without_the_password(password: str) -> None:
    store = PostgresStore(f"postgresql://app:{password}@127.0.0.1:9/d", connect_timeout=1)  # nothing listens on 9
    try:
        with pytest.raises(StorageError) as raised:
            store.check()
    finally:
        store.close()
    assert "127.0.0.1:9/d" in str(raised.value) and "ter2" not in str(raised.value)


def test_a_bad_url_is_a_configuration_error_that_hides_the_password() -> None:
    with pytest.raises(ConfigurationError) as raised:
        build_service(Settings(store_url="postgres://app:hunter2@db.example.com/d?nonsense=1"))
    assert "hunter2" not in str(raised.value) and "app:***@db.example.com" in str(raised.value)
    assert "nonsense" in raised.value.problem


# Against the real server


def test_the_schema_is_created_once_by_many_processes_starting_together(postgres_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(6) as pool:
        results = pool.map(_first_write, [(postgres_url, k) for k in range(6)])

    assert sorted(results) == list(range(6))
    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute("SELECT max(version) FROM schema_migrations").fetchall()
        stored = conn.execute("SELECT count(*) FROM predictions").fetchone()
    assert versions == [(SCHEMA_VERSION,)]
    assert stored == (6,)


def _first_write(job: tuple[str, int]) -> int:
    url, k = job
    store = PostgresStore(url)
    try:
        stored, created = store.record(make_record(k, {"k": k}), {"n": 1})
        assert created
        return int(stored.id)
    finally:
        store.close()


def test_reopening_keeps_every_record_and_migrates_nothing_again(postgres_url: str) -> None:
    first = PostgresStore(postgres_url)
    first.record(make_record(1), {"n": 1})
    first.close()

    again = PostgresStore(postgres_url)
    try:
        assert again.get(1) == make_record(1)
        assert again.aggregate_totals() == {"titanic-1": {"n": 1}}
    finally:
        again.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (SCHEMA_VERSION,)


def test_a_schema_newer_than_this_service_is_refused_and_left_alone(store: PostgresStore, postgres_url: str) -> None:
    store.check()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    newer = PostgresStore(postgres_url)
    try:
        with pytest.raises(StorageError, match=f"version {SCHEMA_VERSION + 1}, newer"):
            newer.check()
    finally:
        newer.close()


def test_a_statement_held_up_by_a_lock_fails_after_the_statement_timeout_and_changes_nothing(
    postgres_url: str,
) -> None:
    store = PostgresStore(postgres_url, statement_timeout=1.0)
    try:
        store.record(make_record(1), {"n": 1})
        with psycopg.connect(postgres_url) as holder:
            holder.execute("SELECT 1 FROM predictions FOR UPDATE")  # a transaction holding every row
            with pytest.raises(StorageError, match="statement timeout"):
                store.set_outcome(1, 1, T0, outcome_counters)
            holder.rollback()
        assert store.get(1).true_class is None
        assert store.aggregate_totals() == {"titanic-1": {"n": 1}}
    finally:
        store.close()


def test_a_refused_connection_is_a_storage_error_naming_the_limit_and_hiding_the_password(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    role = "limited_app"
    postgres_server.sql(f"DROP ROLE IF EXISTS {role}")
    postgres_server.sql(f"CREATE ROLE {role} LOGIN PASSWORD 'hunter2' CONNECTION LIMIT 0")
    try:
        url = postgres_url.replace("postgres@", f"{role}:hunter2@")
        store = PostgresStore(url, statement_timeout=1.0)
        try:
            with pytest.raises(StorageError) as raised:
                store.check()
        finally:
            store.close()
        message = str(raised.value)
        assert "too many connections" in message and "DATABASE_POOL_SIZE" in message
        assert "hunter2" not in message
    finally:
        postgres_server.sql(f"DROP ROLE IF EXISTS {role}")


def test_a_server_restart_is_survived_by_the_same_store_object(
    postgres_server: PostgresServer, store: PostgresStore
) -> None:
    store.record(make_record(1), {"n": 1})

    postgres_server.restart()

    # The pool's connection died with the old server: the store retries on a fresh one.
    assert store.record(make_record(2, {"x": 2}), {"n": 1})[1] is True
    assert store.get(1) == make_record(1)
    assert store.aggregate_totals() == {"titanic-1": {"n": 2}}


def test_concurrent_writers_in_many_threads_and_stores_lose_and_double_nothing(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url, pool_size=2) for _ in range(4)]
    ids = list(range(200))

    def write(n: int) -> list[str]:
        store = stores[n % len(stores)]
        outcomes = []
        for prediction_id in ids[n::8] + ids[: 50]:  # its own ids, then ids every writer contests
            observation = {"x": prediction_id} if prediction_id >= 50 or n % 2 else {"x": -prediction_id - 1}
            try:
                store.record(make_record(prediction_id, observation), {"n": 1})
                outcomes.append("stored")
            except ConflictingPrediction:
                outcomes.append("conflict")
            store.set_outcome(prediction_id, n % 2, T0 + timedelta(seconds=n), outcome_counters)
        return outcomes

    try:
        with ThreadPoolExecutor(8) as pool:
            results = [outcome for outcomes in pool.map(write, range(8)) for outcome in outcomes]
        assert "conflict" in results
        records = all_records(stores[0])
        assert sorted(r.id for r in records) == ids
        # Every outcome was replaced many times, concurrently: the counters hold the last ones.
        expected = quality.merged(
            quality.outcome_increments(r.proba, r.predicted_class, None, r.true_class) for r in records  # type: ignore[arg-type]
        )
        assert_totals_equal(stores[0].aggregate_totals(), {"titanic-1": {**expected, "n": len(ids)}})
    finally:
        for store in stores:
            store.close()


def test_one_store_is_safe_for_many_threads_of_one_process(store: PostgresStore) -> None:
    barrier = threading.Barrier(8)

    def write(n: int) -> bool:
        barrier.wait()
        return store.record(make_record(f"t{n}", {"n": n}), {"n": 1})[1]

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(write, range(8)))
    assert store.aggregate_totals() == {"titanic-1": {"n": 8}}


def test_after_an_outage_the_first_call_once_the_server_is_back_succeeds(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """The pool backs off between reconnection attempts (to minutes after a long outage); once a
    connection opens again, the store replaces the pool instead of waiting that out."""
    store = PostgresStore(postgres_url, statement_timeout=1.0, connect_timeout=1.0)
    try:
        store.check()
        postgres_server.stop()
        try:
            outage_ends = time.monotonic() + 8  # long enough for the pool's backoff to pass 1 s
            while time.monotonic() < outage_ends:  # the calls requests would make meanwhile
                with pytest.raises(StorageError):
                    store.check()
        finally:
            postgres_server.start()
        store.check()
        assert store.record(make_record(1), {"n": 1})[1] is True
    finally:
        store.close()


def test_a_database_at_schema_version_1_is_migrated_and_keeps_its_records(postgres_url: str) -> None:
    from adapters.storage.postgres import MIGRATIONS

    with psycopg.connect(postgres_url, autocommit=True) as conn:  # as the first version left it
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz"
                     " NOT NULL DEFAULT now())")
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations (version) VALUES (1)")
        conn.execute(
            "INSERT INTO predictions (id_key, observation, proba, predicted_class, threshold, model_version,"
            " warnings, created_at, updated_at) VALUES ('1', '{\"Age\": 29.0, \"Sex\": \"female\", \"Pclass\": 1}',"
            " 0.8125, true, 0.5, 'titanic-1', '[]', %s, %s)", (T0, T0),
        )

    store = PostgresStore(postgres_url)
    try:
        assert store.get(1) == make_record(1)
        assert store.record(make_record(2, {"x": 2}, shadows=(ShadowScore("c", 0.5, True),)))[0].shadows
        assert store.get(2).shadows == (ShadowScore("c", 0.5, True),)
    finally:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall() == [(1,), (2,)]
