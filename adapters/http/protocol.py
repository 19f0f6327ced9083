"""uvicorn's httptools protocol, with each small response sent in one write instead of two.

uvicorn writes a response's head when the app sends `http.response.start` and its body at
`http.response.body`: two `write()` calls, and with TCP_NODELAY (adapters/serve.py) two
segments, two wake-ups of the client, for a prediction of about 600 bytes in all. The socket
writes were the largest single item in a profile of the service under load
(docs/performance.md). This protocol hands the connection a transport
that holds a response head back until the next write, which joins it, or until the event loop
turns (a streamed or empty body), whichever comes first. Everything else about the protocol
is uvicorn's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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
    """uvicorn's `HttpToolsProtocol` on a `CoalescingTransport`.

    For uvicorn's `--http adapters.http.protocol:CoalescingHttpToolsProtocol` (adapters.serve).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))  # type: ignore[arg-type]


def _is_response_head(data: bytes | bytearray | memoryview) -> bool:
    # What uvicorn writes at `http.response.start`: the status line and headers, nothing after.
    return bytes(data[:5]) == b"HTTP/" and bytes(data[-4:]) == b"\r\n\r\n"
