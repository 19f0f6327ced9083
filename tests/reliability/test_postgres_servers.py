"""Heroku's shape on one machine: servers of 2 uvicorn workers each on one real PostgreSQL database.

Under 32 concurrent clients (new predictions, batches, exact retries, conflicting duplicates,
outcomes, contested ids: load.py): nothing lost or doubled and the quality counters equal a
recomputation over the records; `kill -9` of one server loses no acknowledged record; the
database going away gives 503s and, once it is back, answers again without restarting the app;
a database that refuses connections gives 503 and a log line that says why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.storage.postgres import PostgresStore
from core.model import load_model
from core.records import canonical_json, id_key
from tests.helpers import README_PASSENGER
from tests.postgres_server import PostgresServer
from tests.reliability.load import Load, Sent, Totals, check_answers, check_retries
from tests.reliability.support import Client, record_figures, scaled, uvicorn
from tests.storage.aggregate_checks import assert_aggregates_match_records

pytestmark = pytest.mark.slow

CLIENTS = 32
ROUNDS = scaled(40, 300)
STABLE = ("observation", "proba", "predicted_class", "model_version", "created_at")
RECOVERY_SECONDS = 60.0
# These checks are about what is stored, not how fast: no statement of a loaded machine may time out.
UNHURRIED = "60"


def postgres_rows(url: str) -> dict[str, dict[str, Any]]:
    """Every stored prediction, read from the database itself (not through the service), by id key."""
    with psycopg.connect(url) as conn:
        cursor = conn.execute("SELECT id_key, observation::text, proba, predicted_class, model_version,"
                              " true_class, created_at FROM predictions")
        names = [column.name for column in cursor.description or ()]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


def assert_stored_as_acknowledged(
    url: str, totals: Totals, *, outcomes_exact: bool = True, also_sent: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Every acknowledged prediction stored as answered, nothing else, counters as recomputed."""
    rows = postgres_rows(url)
    acknowledged = totals.acknowledged()
    lost = [key for key in acknowledged if key not in rows]
    assert lost == [], lost[:5]
    assert set(rows) <= totals.attempted_ids() | also_sent, "a row is stored that no client sent"
    for key, record in acknowledged.items():
        row = rows[key]
        assert row["observation"] == canonical_json(record["observation"]), key
        assert row["proba"] == record["proba"]
        assert row["predicted_class"] == bool(record["predicted_class"])
        assert row["created_at"].isoformat() == record["created_at"].replace("Z", "+00:00")
        if outcomes_exact:
            assert row["true_class"] == record["true_class"], key
    store = PostgresStore(url)
    try:
        assert_aggregates_match_records(store, [load_model()])
    finally:
        store.close()
    return {"acknowledged_records": len(acknowledged), "stored_rows": len(rows), "records_lost": len(lost)}


def no_5xx_but(totals: Totals, allowed: set[int]) -> list[Sent]:
    return [s for s in totals.answered if s.status is not None and s.status >= 500 and s.status not in allowed]


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database owned by a role of its own (not a superuser, as on Heroku); its URL."""
    name = f"servers_{time.monotonic_ns()}"
    postgres_server.sql("DROP ROLE IF EXISTS app")
    postgres_server.sql("CREATE ROLE app LOGIN PASSWORD 'app-secret'")
    postgres_server.sql(f'CREATE DATABASE "{name}" OWNER app')
    yield postgres_server.url(name, user="app:app-secret")
    postgres_server.drop_database(name)
    postgres_server.sql("DROP ROLE IF EXISTS app")


class Running:
    """A load in a thread of its own, counting its 200s so that a test can act after so many."""

    def __init__(self, ports: list[int], seed: int) -> None:
        self.acks = 0
        self._lock = threading.Lock()
        self.load = Load(ports, CLIENTS, rounds=100_000, seed=seed, timeout=30, stop_on_error=True,
                         on_answer=self._count)
        self._runner = threading.Thread(target=self.load.run, kwargs={"join_timeout": 300}, daemon=True)
        self._runner.start()

    def _count(self, sent: Sent) -> None:
        if sent.status == 200:
            with self._lock:
                self.acks += 1

    def wait_for_acks(self, acks: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acks < acks:
            assert time.monotonic() < deadline, f"only {self.acks} of {acks} answers came"
            time.sleep(0.02)

    def wait_for(self, condition: Callable[[Totals], bool], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.load.totals):
            assert time.monotonic() < deadline, f"not reached in {timeout} s: {self.load.totals.statuses()}"
            time.sleep(0.02)

    def stop(self) -> Totals:
        self.load.stop.set()
        self._runner.join(120)
        assert not self._runner.is_alive()
        return self.load.totals


def test_two_servers_of_two_workers_on_one_database_lose_and_double_nothing(database: str, tmp_path: Path) -> None:
    env = {"STORE_URL": database, "DATABASE_STATEMENT_TIMEOUT": UNHURRIED}
    with uvicorn(env, tmp_path / "a.log", workers=2) as a, uvicorn(env, tmp_path / "b.log", workers=2) as b:
        started = time.monotonic()
        totals = Load([a.port, b.port], CLIENTS, ROUNDS, seed=1).run()
        elapsed = time.monotonic() - started
        logs = a.process.output() + b.process.output()

    statuses = totals.statuses()
    assert not totals.unanswered, totals.unanswered[:3]
    assert no_5xx_but(totals, set()) == []
    assert check_answers(totals) == []
    assert check_retries(totals) == []
    assert statuses.get(409, 0) > 0 and statuses.get(200, 0) > 0
    figures = assert_stored_as_acknowledged(database, totals)
    assert "Traceback" not in logs
    record_figures("postgres-concurrency", servers=2, workers=2, clients=CLIENTS, requests=len(totals.sent),
                   statuses=statuses, seconds=round(elapsed, 1), **figures)


def test_kill_9_of_one_server_mid_load_loses_no_acknowledged_record(database: str, tmp_path: Path) -> None:
    env = {"STORE_URL": database, "DATABASE_STATEMENT_TIMEOUT": UNHURRIED}
    with uvicorn(env, tmp_path / "a.log", workers=2) as a, uvicorn(env, tmp_path / "b.log", workers=2) as b:
        running = Running([a.port, b.port], seed=2)
        running.wait_for_acks(scaled(400, 2000))
        a.process.kill9()
        running.wait_for_acks(running.acks + 200)  # the survivor's clients go on meanwhile
        totals = running.stop()
        survivor_log = b.process.output()

    assert totals.unanswered, "the kill came after the load had finished: nothing was in flight"
    assert no_5xx_but(totals, set()) == []
    assert check_answers(totals) == []
    # An update in flight at the kill may or may not have landed: outcomes are checked by the counters.
    figures = assert_stored_as_acknowledged(database, totals, outcomes_exact=False)
    assert "Traceback" not in survivor_log
    record_figures("postgres-kill", unanswered_at_kill=len(totals.unanswered), **figures)


def test_postgres_going_away_mid_load_gives_503_then_answers_again_without_restarting_the_app(
    postgres_server: PostgresServer, database: str, tmp_path: Path
) -> None:
    env = {"STORE_URL": database, "DATABASE_STATEMENT_TIMEOUT": "2"}
    with uvicorn(env, tmp_path / "server.log", workers=2) as server:
        running = Running([server.port], seed=3)
        running.wait_for_acks(scaled(200, 1000))
        postgres_server.stop()
        running.wait_for(lambda totals: totals.statuses().get(503, 0) >= CLIENTS)
        postgres_server.start()
        running.wait_for_acks(running.acks + 200)  # the same workers, reconnected
        totals = running.stop()
        log = server.process.output()

    assert no_5xx_but(totals, {503}) == [], "only 503 may answer while the database is away"
    assert check_answers(Totals([s for s in totals.sent if s.status != 503])) == []
    figures = assert_stored_as_acknowledged(database, totals, outcomes_exact=False)
    assert "Traceback" not in log
    assert "store_unavailable" in log
    record_figures("postgres-outage", answered_503=totals.statuses().get(503, 0), **figures)


def wait_for_a_stored_prediction(client: Client) -> tuple[Any, frozenset[str]]:
    """POST /predict until it answers 200 (bounded): the app reconnects by itself. Returns the
    last answer and the id keys sent."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    sent: set[str] = set()
    while True:
        prediction_id = f"after-{len(sent)}"
        sent.add(id_key(prediction_id))
        reply = client.request("POST", "/predict", {"id": prediction_id, "observation": README_PASSENGER})
        if reply.status == 200 or time.monotonic() > deadline:
            return reply, frozenset(sent)
        assert reply.status == 503, (reply.status, reply.body[:300])
        time.sleep(0.2)


def test_a_database_that_refuses_connections_gives_503_and_says_why(
    postgres_server: PostgresServer, database: str, tmp_path: Path
) -> None:
    with uvicorn({"STORE_URL": database}, tmp_path / "server.log", workers=1) as server:
        client = server.client(timeout=30)
        assert client.request("POST", "/predict", {"id": "before", "observation": README_PASSENGER}).status == 200
        # As when the plan's connection limit is reached: new connections are refused, and the
        # worker's open ones are gone (terminated, as a failover or a restart would).
        postgres_server.sql("ALTER ROLE app CONNECTION LIMIT 0")
        # (waiting up to 10 s for each to be gone, so that the next request cannot find one alive)
        postgres_server.sql("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE usename = 'app'")
        refused = client.request("POST", "/predict", {"id": "refused", "observation": README_PASSENGER})
        postgres_server.sql("ALTER ROLE app CONNECTION LIMIT -1")
        recovered, _ = wait_for_a_stored_prediction(client)
        client.close()
        log = server.process.output()

    assert refused.status == 503, refused.body[:300]
    assert refused.json()["type"].endswith("store-unavailable")
    lines = [line for line in log.splitlines() if "store_unavailable" in line]
    assert any("too many connections" in line and "DATABASE_POOL_SIZE" in line for line in lines), log[-2000:]
    assert "app-secret" not in log
    assert recovered.status == 200
    assert id_key("refused") not in postgres_rows(database)
