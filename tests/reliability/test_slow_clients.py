"""Connections that never finish a request are closed after REQUEST_TIMEOUT seconds.

uvicorn closes a connection idle after a response, but kept forever one that sent nothing, or
stopped half-way through its headers or its body (3,000 of them stayed open for 100 s). The
checks wait for the server to close each stalled connection, up to a bound far above the
timeout; a well-behaved client meanwhile is answered as usual.
"""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path

from tests.reliability.support import uvicorn

REQUEST_TIMEOUT = 3
CLOSE_BOUND_SECONDS = 90
STALLS = {
    "nothing sent": b"",
    "half a request line": b"POST /pred",
    "headers without their end": b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n",
    "a body shorter than its length": b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                      b"Content-Length: 400\r\n\r\n{\"id\": 1, ",
}


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Reads until the server closes (EOF or reset) or `deadline` passes; any answer is read past."""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 1.0)
        if not ready:
            continue
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
    return False


def test_stalled_connections_are_closed_and_others_are_served(tmp_path: Path, passenger: dict) -> None:
    env = {"STORE_URL": f"sqlite:///{tmp_path / 'p.db'}", "REQUEST_TIMEOUT": str(REQUEST_TIMEOUT)}
    with uvicorn(env, tmp_path / "uvicorn.log") as server:
        stalled = {}
        for name, data in STALLS.items():
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            if data:
                sock.sendall(data)
            stalled[name] = sock
        # A keep-alive connection that was answered once, then stalls half-way through its next request.
        kept = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        body = json.dumps({"id": 1, "observation": passenger}).encode()
        kept.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body) + b"GET /heal")
        stalled["a second request left half-way"] = kept

        client = server.client()
        assert client.request("POST", "/predict", {"id": 2, "observation": passenger}).status == 200

        deadline = time.monotonic() + CLOSE_BOUND_SECONDS
        still_open = [name for name, sock in stalled.items() if not closed_by_server(sock, deadline)]
        for sock in stalled.values():
            sock.close()
        assert still_open == [], f"still open after {CLOSE_BOUND_SECONDS} s: {still_open}"

        # The server is unharmed: a new client is answered, the kept connection's first request was stored.
        fresh = server.client()
        assert fresh.request("GET", "/health").status == 200
        assert fresh.request("GET", "/predictions/1").status == 200
        fresh.close()
        client.close()


def read_answer(sock: socket.socket, deadline: float) -> bytes:
    """One whole HTTP answer (head and Content-Length body) from `sock`, or what came before EOF."""
    data = b""
    while time.monotonic() < deadline:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(body) >= length:
                return data
        ready, _, _ = select.select([sock], [], [], 1.0)
        if ready:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    return data


def test_a_pipelined_request_waits_for_the_answer_before_it_without_losing_that_answer(
    tmp_path: Path, passenger: dict
) -> None:
    """The first request is held up (the test holds the store's write lock for twice the
    timeout); the second, sent half-way right behind it, gets its deadline only once the first
    is answered. The first is answered whatever the wait."""
    import fcntl

    database = tmp_path / "p.db"
    env = {"STORE_URL": f"sqlite:///{database}", "REQUEST_TIMEOUT": str(REQUEST_TIMEOUT)}
    with uvicorn(env, tmp_path / "uvicorn.log") as server:
        body = json.dumps({"id": 7, "observation": passenger}).encode()
        with open(f"{database}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body) + b"GET /heal")
            held_until = time.monotonic() + 2 * REQUEST_TIMEOUT
            while time.monotonic() < held_until:
                ready, _, _ = select.select([sock], [], [], held_until - time.monotonic())
                assert not ready, "the server answered or closed while the first request was held"
            fcntl.flock(lock, fcntl.LOCK_UN)
        deadline = time.monotonic() + CLOSE_BOUND_SECONDS
        answer = read_answer(sock, deadline)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert closed_by_server(sock, deadline), "the half-sent second request kept its connection open"
        sock.close()
