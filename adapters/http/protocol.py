"""uvicorn's httptools protocol with a deadline for reading each request, and each small
response sent in one write instead of two.

uvicorn closes a connection left idle after a response (`--timeout-keep-alive`), but not one
that never sends a request, nor one that stops half-way through its headers or body: 3,000 such
connections stayed open for 100 s. Here each request, from the connection's opening or the
request's first byte (for a pipelined request, the end of the answer before it) to its last
byte, must arrive within `request_timeout` seconds (REQUEST_TIMEOUT, set by adapters.asgi), or
the connection is closed. uvicorn has no setting for it, and no public hook: this subclass uses
the parser callbacks httptools defines (`on_message_begin`, `on_message_complete`) and uvicorn's
request cycle's `on_response_complete`, each of which it calls through. uvicorn is pinned;
`tests/reliability/test_slow_clients.py` runs the deadline for real, and
`tests/http/test_protocol.py` fails first, naming the hook, if an upgrade changes them.

One write: uvicorn writes a response's head at `http.response.start` and its body at
`http.response.body`, two `write()` calls and, with TCP_NODELAY (adapters/serve.py), two
segments and two wake-ups of the client for a prediction of about 600 bytes. The connection's
transport here holds a head back until the next write joins it, or until the event loop turns
(an empty or streamed body). It is kept for what it measured against uvicorn's own writes in the
same run (docs/performance.md: a gain on one machine, none on another); tests/http/test_protocol.py
counts the segments of each answer with the client's kernel, so an upgrade of uvicorn that
writes differently fails there.

Everything else is uvicorn's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from adapters.settings import DEFAULT_REQUEST_TIMEOUT

# How often each event loop looks for connections past their deadline: a deadline is kept to
# within this much.
SWEEP_SECONDS = 0.5
# The methods of uvicorn's protocol this class extends, each called through with super().
HOOKS = ("connection_made", "on_message_begin", "on_message_complete", "on_response_complete", "connection_lost")


class CoalescingTransport:
    """A transport that joins a held-back response head with the write that follows it."""

    __slots__ = ("_transport", "_held", "_loop")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            data, self._held = self._held + bytes(data), None
            self._transport.write(data)
        elif bytes(data[:5]) == b"HTTP/" and bytes(data[-4:]) == b"\r\n\r\n":
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(chunks))

    def flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `HttpToolsProtocol` with a deadline per request.

    For uvicorn's `--http adapters.http.protocol:DeadlineHttpToolsProtocol` (adapters.serve).
    A request only notes when its reading began; one sweep per event loop, every
    `SWEEP_SECONDS`, closes the connections that have been reading for longer than the
    deadline. (A timer per request, started and cancelled around every read, cost 9 % of the
    throughput: docs/performance.md.)
    """

    request_timeout: float = float(DEFAULT_REQUEST_TIMEOUT)
    # Since when (time.monotonic()) the request being read has been awaited; None when none is.
    _reading_since: float | None = None
    # Requests begun and answered on this connection, and whether one is being read.
    _begun = 0
    _answered = 0
    _reading = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))  # type: ignore[arg-type]
        self._reading_since = time.monotonic()  # from the connection's opening, the first request has it all
        _sweeper().watch(self)

    # httptools calls these two as it parses: the first byte of a request and its last. A
    # request that begins while an earlier one is still being answered (pipelining) waits:
    # uvicorn stops reading until that answer is sent, so its deadline starts only then.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun += 1
        self._reading = True
        if self._begun - self._answered == 1 and self._reading_since is None:
            self._reading_since = time.monotonic()

    def on_message_complete(self) -> None:
        self._reading = False
        self._reading_since = None
        super().on_message_complete()

    # uvicorn's request cycle calls this when an answer has been sent.
    def on_response_complete(self) -> None:
        self._answered += 1
        super().on_response_complete()
        if self._reading and self._begun - self._answered == 1:
            self._reading_since = time.monotonic()

    def connection_lost(self, exc: Exception | None) -> None:
        self._reading_since = None
        _sweeper().forget(self)
        super().connection_lost(exc)

    def request_overdue(self, now: float) -> bool:
        return self._reading_since is not None and now - self._reading_since > self.request_timeout


class DeadlineSweeper:
    """The connections of one event loop, and the timer that closes the overdue ones."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.connections: set[DeadlineHttpToolsProtocol] = set()
        self.timer: asyncio.TimerHandle | None = None

    def watch(self, connection: DeadlineHttpToolsProtocol) -> None:
        self.connections.add(connection)
        if self.timer is None:
            self.timer = self.loop.call_later(SWEEP_SECONDS, self.sweep)

    def forget(self, connection: DeadlineHttpToolsProtocol) -> None:
        self.connections.discard(connection)

    def sweep(self) -> None:
        now = time.monotonic()
        for connection in [c for c in self.connections if c.request_overdue(now)]:
            self.connections.discard(connection)
            if not connection.transport.is_closing():
                connection.transport.close()
        self.timer = self.loop.call_later(SWEEP_SECONDS, self.sweep) if self.connections else None


_sweepers: dict[asyncio.AbstractEventLoop, DeadlineSweeper] = {}


def _sweeper() -> DeadlineSweeper:
    loop = asyncio.get_running_loop()
    sweeper = _sweepers.get(loop)
    if sweeper is None:
        sweeper = _sweepers[loop] = DeadlineSweeper(loop)
    return sweeper
