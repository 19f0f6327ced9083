"""Real servers for the reliability checks: uvicorn and moto on 127.0.0.1, each in its own process
group with its output in a file, always killed when the block ends; a small HTTP client with a
timeout on every call; and the figures the checks report.

Nothing here talks to anything but 127.0.0.1. `SOAK=1` (make soak) makes the long checks longer.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import README_PASSENGER

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SOAK = os.environ.get("SOAK", "").strip() not in ("", "0")
FIGURES = Path(os.environ.get("RELIABILITY_FIGURES", ROOT / ".pytest_cache" / "reliability-figures.jsonl"))

# Variables the service reads (adapters/settings.py) or that would point boto at a real account:
# a test server sees only what the test gives it.
SERVICE_VARIABLES = (
    "STORE_URL", "DATABASE_URL", "DATABASE_POOL_SIZE", "DATABASE_STATEMENT_TIMEOUT",
    "MODEL_DIR", "SHADOW_MODEL_DIRS", "API_KEY", "PREDICT_REQUIRES_KEY", "MAX_BODY_BYTES", "MAX_BATCH",
    "MAX_STRING_LENGTH",
    "REQUEST_TIMEOUT", "LOG_LEVEL",
    "DYNO", "WEB_CONCURRENCY", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
)
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def scaled(normal: int, soak: int) -> int:
    """`soak` under make soak, else `normal`."""
    return soak if SOAK else normal


def record_figures(check: str, **figures: Any) -> None:
    """Append one line of figures (requests sent, failures, records lost...) for docs/reliability.md."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as out:
        line = {"check": check, "soak": SOAK, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}
        out.write(json.dumps(line) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the service's variables, plus fake AWS credentials and `overrides`."""
    env = {name: value for name, value in os.environ.items() if name not in SERVICE_VARIABLES}
    env.update(FAKE_AWS)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


class Client:
    """One keep-alive connection to 127.0.0.1:`port`; reconnects after any failure. Not thread-safe."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """Send one request; raises OSError or http.client.HTTPException when no answer came.

        `body` is bytes as they are, an iterator of bytes (sent chunked), or a value sent as JSON;
        Content-Type is application/json unless `headers` say otherwise.
        """
        chunked = isinstance(body, Iterator)
        data = body if body is None or chunked or isinstance(body, bytes) else json.dumps(body).encode()
        sent = dict(headers or {})
        if data is not None and not any(name.lower() == "content-type" for name in sent):
            sent["Content-Type"] = "application/json"
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self._conn.request(method, path, body=data, headers=sent, encode_chunked=chunked)
            response = self._conn.getresponse()
            reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        except BaseException:
            self.close()
            raise
        if reply.headers.get("connection", "").lower() == "close":
            self.close()
        return reply

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Process:
    """A server process in its own process group, its stdout and stderr in one file."""

    def __init__(self, command: list[str], env: Mapping[str, str], log: Path) -> None:
        self.command = command
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                command, cwd=ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def kill9(self, timeout: float = 10.0) -> None:
        """SIGKILL to the whole group (the uvicorn supervisor and every worker), and reap it."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=timeout)
        self._wait_group_gone(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the group, SIGKILL if it is not gone within `timeout`."""
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        # Workers may outlive a supervisor that died: nothing of the group may stay behind.
        self.signal_group(signal.SIGKILL)
        self._wait_group_gone(timeout)

    def _wait_group_gone(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._group_running():
            time.sleep(0.05)

    def _group_running(self) -> bool:
        """Any process of the group that is not a zombie (orphaned workers may never be reaped here)."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == self.popen.pid and fields[0] != "Z":
                return True
        return False


@dataclass
class Server:
    port: int
    process: Process

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30.0) -> Client:
        return Client(self.port, timeout)


def uvicorn_command(port: int, workers: int = 1, *extra: str) -> list[str]:
    """The server as the Procfile runs it (adapters.serve: uvicorn on a socket with TCP_NODELAY)."""
    return [sys.executable, "-m", "adapters.serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), *extra]


@contextmanager
def uvicorn(
    env: Mapping[str, str], log: Path, *, workers: int = 1, port: int | None = None, extra: tuple[str, ...] = ()
) -> Iterator[Server]:
    """uvicorn serving adapters.asgi:app with `env` (on top of `server_env`), until the block ends."""
    port = port or free_port()
    process = Process(uvicorn_command(port, workers, *extra), server_env(env), log)
    try:
        wait_until_answering(process, port, workers)
        yield Server(port, process)
    finally:
        process.stop()


def wait_until_answering(process: Process, port: int, workers: int = 1, timeout: float = 60.0) -> None:
    """Until GET /health has been answered (by every worker, as far as a few tries can tell)."""
    deadline = time.monotonic() + timeout
    answered = 0
    client = Client(port, timeout=5.0)
    try:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.command} exited with {process.popen.returncode}:\n{process.output()}")
            try:
                client.request("GET", "/health", headers={"Connection": "close"})
                answered += 1
                if answered >= 2 * workers:
                    return
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
    finally:
        client.close()
    raise TimeoutError(f"nothing answered on 127.0.0.1:{port} after {timeout} s:\n{process.output()}")


def wait_for_port(port: int, process: Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.command} exited with {process.popen.returncode}:\n{process.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s:\n{process.output()}")


def start_moto(port: int, log: Path) -> Process:
    """moto's DynamoDB server as a process of its own on 127.0.0.1:`port` (its state dies with it).

    One request at a time (moto_serial.py): moto's threaded server loses writes under concurrent
    transactions, which would be moto's failure, not the service's.
    """
    process = Process([sys.executable, "-m", "tests.reliability.moto_serial", str(port)], server_env({}), log)
    try:
        wait_for_port(port, process)
    except BaseException:
        process.stop()
        raise
    return process


def create_table(table: str, endpoint: str, log: Path) -> None:
    """The README's command for a local table: python -m adapters.storage.dynamodb create-table."""
    env = server_env({"AWS_ENDPOINT_URL_DYNAMODB": endpoint})
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "adapters.storage.dynamodb", "create-table", table],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=60, check=False,
        )
    assert done.returncode == 0, log.read_text(errors="replace")


def sqlite_rows(path: Path) -> dict[str, dict[str, Any]]:
    """Every stored prediction, read from the file itself (not through the service), by id key."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM predictions ORDER BY seq").fetchall()
        return {row["id_key"]: dict(row) for row in rows}
    finally:
        conn.close()


def sqlite_aggregates(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The quality counters, day rows and running totals, read from the file itself."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
            for table in ("aggregates", "aggregate_totals")
        }
    finally:
        conn.close()


def sqlite_integrity(path: Path) -> str:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    """`reply` is an RFC 9457 problem with `status`; returns its body."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.media_type == "application/problem+json", reply.headers
    problem = reply.json()
    assert isinstance(problem, dict)
    for member in ("type", "title", "status", "detail"):
        assert member in problem, problem
    assert problem["status"] == status
    return problem


class FaultyProxy:
    """A TCP proxy on 127.0.0.1 to `target_port`. Once `fault` is "reset", it answers every request
    by resetting the connection (as a server that dies mid-request does); once it is "silent", it
    takes requests and never answers (as a server that hangs does)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.fault: str | None = None
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            _reset(client)
            return
        try:
            for _ in range(100_000):
                if self._closed.is_set():
                    return
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client and self.fault == "reset":
                        _reset(client)
                        return
                    if sock is client and self.fault == "silent":
                        continue
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
            client.close()


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a reset, not an orderly end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


@dataclass
class WebRun:
    reply: Reply  # the answer to the README's prediction
    status: int  # the web process's exit status after SIGTERM
    output: str


def run_procfile_web(overrides: Mapping[str, str], log: Path) -> WebRun:
    """The Procfile's web line as Heroku runs it (bash -c, $PORT, the dyno's variables in
    `overrides`), the README's prediction posted once, then the SIGTERM a dyno gets on restart."""
    web = (ROOT / "Procfile").read_text().strip().removeprefix("web:").strip()
    port = free_port()
    env = server_env({
        "PORT": str(port), "HOST": "127.0.0.1",  # loopback only in tests
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `python` is ours
        **overrides,
    })
    process = Process(["bash", "-c", web], env, log)
    try:
        wait_until_answering(process, port, workers=int(overrides.get("WEB_CONCURRENCY", "2")))
        client = Client(port)
        reply = client.request("POST", "/predict", {"id": 0, "observation": README_PASSENGER})
        client.close()
        process.signal_group(signal.SIGTERM)
        try:
            status = process.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the web process ignored SIGTERM for 30 s:\n{process.output()}") from None
    finally:
        process.stop()
    return WebRun(reply, status, process.output())
