"""uvicorn's httptools protocol, with each small response sent in one write instead of two, and
a deadline for reading each request.

uvicorn writes a response's head when the app sends `http.response.start` and its body at
`http.response.body`: two `write()` calls, and with TCP_NODELAY (adapters/serve.py) two
segments, two wake-ups of the client, for a prediction of about 600 bytes in all. The socket
writes were the largest single item in a profile of the service under load
(docs/performance.md). This protocol hands the connection a transport
that holds a response head back until the next write, which joins it, or until the event loop
turns (a streamed or empty body), whichever comes first. Everything else about the protocol
is uvicorn's.

The deadline: uvicorn closes a connection left idle after a response (`--timeout-keep-alive`),
but not one that never sends a request, nor one that stops half-way through its headers or
body: 3,000 such connections stayed open for 100 s. Here each request, from the connection's
opening or the request's first byte (for a pipelined request, the end of the answer before it)
to its last byte, must arrive within `request_timeout` seconds (REQUEST_TIMEOUT, set by
adapters.asgi), or the connection is closed. The hooks are uvicorn's own parser and cycle
callbacks (uvicorn is pinned; tests/reliability/test_slow_clients.py runs them for real).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from adapters.settings import DEFAULT_REQUEST_TIMEOUT


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
        elif _is_response_head(data):
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
        # Reading, flow control, extra info and the rest are the real transport's.
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `HttpToolsProtocol` on a `CoalescingTransport`, with a deadline per request.

    For uvicorn's `--http adapters.http.protocol:CoalescingHttpToolsProtocol` (adapters.serve).
    """

    request_timeout: float = float(DEFAULT_REQUEST_TIMEOUT)
    _request_timer: asyncio.TimerHandle | None = None
    # Requests begun and answered on this connection, and whether one is being read.
    _begun = 0
    _answered = 0
    _reading = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))  # type: ignore[arg-type]
        self._start_request_deadline()

    # httptools calls these two as it parses: the first byte of a request and its last. A
    # request that begins while an earlier one is still being answered (pipelining) waits:
    # uvicorn stops reading until that answer is sent, so its deadline starts only then.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun += 1
        self._reading = True
        if self._begun - self._answered == 1:
            self._start_request_deadline()

    def on_message_complete(self) -> None:
        self._reading = False
        self._stop_request_deadline()
        super().on_message_complete()

    # uvicorn's request cycle calls this when an answer has been sent.
    def on_response_complete(self) -> None:
        self._answered += 1
        super().on_response_complete()
        if self._reading and self._begun - self._answered == 1:
            self._start_request_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_request_deadline()
        super().connection_lost(exc)

    def _start_request_deadline(self) -> None:
        # Kept when already running: from the connection's opening, the first request has it all.
        if self._request_timer is None:
            self._request_timer = asyncio.get_running_loop().call_later(self.request_timeout, self._request_timed_out)

    def _stop_request_deadline(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _request_timed_out(self) -> None:
        self._request_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def _is_response_head(data: bytes | bytearray | memoryview) -> bool:
    # What uvicorn writes at `http.response.start`: the status line and headers, nothing after.
    return bytes(data[:5]) == b"HTTP/" and bytes(data[-4:]) == b"\r\n\r\n"
