"""A real, throwaway PostgreSQL server for tests: initdb into a private directory, pg_ctl on a free port of
127.0.0.1, trust authentication, and stop/restart/kill for the durability checks.

Where the server's files live: always in a fresh `tempfile.mkdtemp(prefix="pg", dir="/tmp")`, not in the
directory the test gives. Two reasons: as root the server must run as the `postgres` user, who cannot reach
pytest's tmp dirs (/tmp/pytest-of-root is 0700); and a unix socket path must stay under ~107 bytes, which
pytest's nested paths can exceed. The given directory receives the server's log (postgres.log) when the
server is closed, so a failed test's tmp dir still tells what the server said.
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import psycopg
import pytest
from psycopg import sql as pgsql
from psycopg.abc import Query

SKIP_REASON = (
    "no PostgreSQL server binaries (initdb, pg_ctl) on this machine: install Debian's postgresql package "
    "(.ci/run does)"
)
DEADLINE = 60.0
NEEDED = ("initdb", "pg_ctl", "postgres")
START_ATTEMPTS = 5
LOG_TAIL_LINES = 40


class PostgresServerError(RuntimeError):
    """A server that did not start, stop or answer in time; the message ends with the tail of its log."""


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in NEEDED)


def _version_key(directory: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: "9.6" and "15" must sort as numbers.
    return tuple(int(part) for part in re.findall(r"\d+", directory.parent.name))


@functools.cache
def server_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: Debian's newest, else the one pg_ctl on PATH is in."""
    for directory in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True):
        if _has_binaries(directory):
            return directory
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        try:
            done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is not None and done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        # Debian-style symlinks (/usr/local/bin/pg_ctl -> .../bin/pg_ctl) lead to the real bin dir.
        candidates += [Path(pg_ctl).parent, Path(pg_ctl).resolve().parent]
    return next((directory for directory in candidates if _has_binaries(directory)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_running(pid: int) -> bool:
    """Whether `pid` runs; a zombie counts as gone (a killed postmaster may never be reaped by this process)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pid:
            found.append(int(stat.parent.name))
    return found


class PostgresServer:
    """One PostgreSQL cluster; `start()` creates it the first time and reuses its data dir and port after."""

    def __init__(self, directory: Path, *, max_connections: int = 100) -> None:
        self.directory = Path(directory)
        self.max_connections = max_connections
        self.port: int | None = None
        self.base: Path | None = None
        self._binaries: Path | None = None
        self._as_postgres = os.geteuid() == 0

    @property
    def data(self) -> Path:
        return self._base() / "data"

    @property
    def log_path(self) -> Path:
        """The live log; copied to `directory/postgres.log` by close()."""
        return self._base() / "postgres.log"

    @property
    def pid(self) -> int | None:
        """The running postmaster's pid, from postmaster.pid; None when the server is down."""
        if self.base is None:
            return None
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if process_running(pid) else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        if self.port is None:
            raise PostgresServerError("the server was never started: it has no port")
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Create the cluster if needed, then start it and wait until it accepts connections."""
        if self.running:
            return
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self._remove_stale_locks()
        if self.port is not None:
            # Restarts and starts after kill() keep the port: URLs handed out earlier stay valid.
            self._pg_ctl_start(self.port)
        else:
            self._start_on_free_port()
        self._wait_accepting()

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        if not self.running:
            return
        self._run([self._bin("pg_ctl"), "stop", "-w", "-t", str(int(DEADLINE)), "-m", mode, "-D", str(self.data)],
                  f"pg_ctl stop -m {mode}")
        self._wait_until(lambda: not self.running, "the server to stop")

    def restart(self) -> None:
        self.stop("fast")
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster, then its children (as a crash would take them), and wait until all are gone."""
        pid = self.pid
        if pid is None:
            return
        children = _children(pid)
        for victim in (pid, *children):
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # A new postmaster refuses to start while an old backend still holds the shared memory.
        gone = [pid, *children]
        self._wait_until(lambda: not any(process_running(p) for p in gone), "the killed server's processes to exit")

    def sql(self, statement: Query, url: str | None = None) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode; its rows, or [] for a statement that returns none."""
        with psycopg.connect(url or self.url(), autocommit=True, connect_timeout=10) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description is not None else []

    def create_database(self, name: str) -> str:
        """Create database `name`; its URL."""
        self.sql(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, closing the connections still open to it (WITH FORCE: PostgreSQL 13+)."""
        self.sql(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))

    def close(self) -> None:
        """Stop the server (immediate: nothing is left to keep), keep its log in `directory`, remove its files."""
        if self.base is None:
            return
        try:
            if self.running:
                try:
                    self.stop("immediate")
                except PostgresServerError:
                    self.kill()
        finally:
            if self.log_path.exists():
                self.directory.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.log_path, self.directory / "postgres.log")
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _base(self) -> Path:
        if self.base is None:
            self.base = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
            (self.base / "s").mkdir()
            if self._as_postgres:
                try:
                    postgres = pwd.getpwnam("postgres")
                except KeyError:
                    raise PostgresServerError(
                        "running as root, the server needs a `postgres` user to run as (Debian's package creates it)"
                    ) from None
                for path in (self.base, self.base / "s"):
                    os.chown(path, postgres.pw_uid, postgres.pw_gid)
        return self.base

    def _bin(self, name: str) -> str:
        if self._binaries is None:
            self._binaries = server_binaries()
            if self._binaries is None:
                raise PostgresServerError(SKIP_REASON)
        return str(self._binaries / name)

    def _run(self, command: list[str], what: str) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            # The server refuses to run as root; runuser keeps this environment (no login shell).
            command = ["runuser", "-u", "postgres", "--", *command]
        # PG* variables (PGDATA, PGPORT...) from the caller's shell must not redirect the tools.
        env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
        try:
            done = subprocess.run(command, cwd=self._base(), env=env, capture_output=True, text=True,
                                  timeout=DEADLINE + 30, check=False)
        except subprocess.TimeoutExpired as error:
            raise PostgresServerError(f"{what} did not finish in {DEADLINE + 30:.0f} s{self._log_tail()}") from error
        if done.returncode != 0:
            raise PostgresServerError(
                f"{what} failed ({done.returncode}): {(done.stdout + done.stderr).strip()}{self._log_tail()}")
        return done

    def _initdb(self) -> None:
        # --no-sync only skips initdb's own final flush; the server below keeps fsync on.
        self._run([self._bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"], "initdb")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self._base() / 's'}'",
            "max_connections": str(self.max_connections),
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/postgres_server.py\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))

    def _remove_stale_locks(self) -> None:
        # After kill() the postmaster may stay a zombie until init reaps it, and PostgreSQL takes a lock whose
        # pid still answers kill(pid, 0) as held. Nothing of the old server runs (kill() waited), so they go.
        for lock in (self.data / "postmaster.pid", *(self._base() / "s").glob(".s.PGSQL.*.lock")):
            lock.unlink(missing_ok=True)

    def _pg_ctl_start(self, port: int) -> None:
        self._run([self._bin("pg_ctl"), "start", "-w", "-t", str(int(DEADLINE)), "-D", str(self.data),
                   "-l", str(self.log_path), "-o", f"-p {port}"], f"pg_ctl start on port {port}")

    def _start_on_free_port(self) -> None:
        # The free port is only free when probed: another process may take it before the postmaster binds it.
        for attempt in range(START_ATTEMPTS):
            port = _free_port()
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._pg_ctl_start(port)
            except PostgresServerError:
                if attempt + 1 == START_ATTEMPTS or "Address already in use" not in self._log_since(logged):
                    raise
                continue
            self.port = port
            return

    def _wait_accepting(self) -> None:
        def accepting() -> bool:
            try:
                self.sql("SELECT 1")
            except psycopg.OperationalError:
                return False
            return True

        self._wait_until(accepting, "the server to accept connections")

    def _wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if time.monotonic() > deadline:
                raise PostgresServerError(f"waited {DEADLINE:.0f} s for {what}{self._log_tail()}")
            time.sleep(0.05)

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _log_tail(self) -> str:
        lines = self._log_since(0).splitlines()[-LOG_TAIL_LINES:]
        return f"\n--- {self.log_path} (tail) ---\n" + "\n".join(lines) if lines else ""


def postgres_or_skip(base: Path) -> PostgresServer:
    """A started server (the caller closes it; its log is then copied to `base`); skips without binaries."""
    if server_binaries() is None:
        pytest.skip(SKIP_REASON)
    server = PostgresServer(base)
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server
