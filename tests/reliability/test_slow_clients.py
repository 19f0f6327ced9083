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
        fresh.close()
        client.close()
