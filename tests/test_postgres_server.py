"""The throwaway PostgreSQL server the PostgreSQL tests rely on: it starts, serves, restarts and survives a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.postgres_server import SKIP_REASON, PostgresServer, postgres_or_skip, process_running, server_binaries


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    # One server for the module: initdb and start are most of these tests' time.
    started = postgres_or_skip(tmp_path_factory.mktemp("postgres"))
    yield started
    started.close()


def test_it_serves_on_127_0_0_1_with_durable_settings(server: PostgresServer) -> None:
    assert server.url() == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    with psycopg.connect(server.url(), connect_timeout=10) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert server.sql("SHOW fsync") == [("on",)]
    assert server.sql("SHOW synchronous_commit") == [("on",)]
    assert server.sql("SHOW listen_addresses") == [("127.0.0.1",)]


def test_create_and_drop_database(server: PostgresServer) -> None:
    url = server.create_database("helper_check")
    assert server.sql("SELECT current_database()", url) == [("helper_check",)]
    with psycopg.connect(url, connect_timeout=10):
        server.drop_database("helper_check")  # even with a connection still open
    assert server.sql("SELECT 1 FROM pg_database WHERE datname = 'helper_check'") == []


def test_restart_keeps_port_and_data(server: PostgresServer) -> None:
    server.sql("CREATE TABLE kept (n int)")
    server.sql("INSERT INTO kept VALUES (1)")
    port, pid = server.port, server.pid
    server.restart()
    assert (server.port, server.running) == (port, True)
    assert server.pid != pid
    assert server.sql("SELECT n FROM kept") == [(1,)]


def test_kill_then_start_recovers_committed_data_only(server: PostgresServer) -> None:
    server.sql("CREATE TABLE crashed (n int)")
    server.sql("INSERT INTO crashed VALUES (1)")
    pending = psycopg.connect(server.url(), connect_timeout=10)
    pending.execute("INSERT INTO crashed VALUES (2)")  # never committed
    server.kill()
    assert not server.running
    pending.close()
    server.start()
    assert server.sql("SELECT n FROM crashed") == [(1,)]


def test_close_stops_the_server_and_keeps_its_log(tmp_path: Path) -> None:
    if server_binaries() is None:
        pytest.skip(SKIP_REASON)
    with PostgresServer(tmp_path, max_connections=7) as server:
        assert server.sql("SHOW max_connections") == [("7",)]
        pid, base = server.pid, server.base
    assert pid is not None and base is not None
    assert not process_running(pid) and not base.exists()
    assert "database system is ready to accept connections" in (tmp_path / "postgres.log").read_text()
