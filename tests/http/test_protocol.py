"""The protocol adapters.serve runs (adapters/http/protocol.py) is uvicorn's, extended at hooks
that must still exist: an upgrade of uvicorn that moves them fails here first, by name.
(tests/reliability/test_slow_clients.py runs the deadline itself against a real server.) A
response's head and body leave in one write, and nothing is lost, reordered or held back."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from adapters.http.protocol import HOOKS, CoalescingTransport, DeadlineHttpToolsProtocol


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_the_deadline_extends_is_still_uvicorns_and_is_called_through(hook: str) -> None:
    theirs = getattr(HttpToolsProtocol, hook, None)
    assert callable(theirs), f"uvicorn's HttpToolsProtocol has no {hook} any more: the deadline needs another hook"
    ours = getattr(DeadlineHttpToolsProtocol, hook)
    assert ours is not theirs
    assert inspect.signature(ours).parameters.keys() == inspect.signature(theirs).parameters.keys(), hook
    assert f"super().{hook}(" in inspect.getsource(ours), f"{hook} must call uvicorn's own"


def test_nothing_else_of_uvicorns_protocol_is_replaced() -> None:
    ours = {name for name, value in vars(DeadlineHttpToolsProtocol).items() if callable(value)}
    overridden = {name for name in ours if hasattr(HttpToolsProtocol, name) and not name.startswith("__")}
    assert overridden == set(HOOKS)
    assert not {name for name in ours if name.startswith("_request") or name.endswith("_deadline")} & set(
        dir(HttpToolsProtocol)), "our own names must not shadow uvicorn's"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """A transport that keeps what is written to it, in order, and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1234)}.get(name, default)


def run(scenario: Any) -> Any:
    return asyncio.run(scenario())


def test_a_head_and_the_body_that_follows_it_are_one_write() -> None:
    async def scenario() -> list[bytes]:
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(HEAD)
        transport.write(b"hello")
        await asyncio.sleep(0)
        return real.writes

    assert run(scenario) == [HEAD + b"hello"]


def test_a_head_without_a_body_goes_out_when_the_loop_turns() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(HEAD)
        held = list(real.writes)
        await asyncio.sleep(0)
        return held, real.writes

    held, after = run(scenario)
    assert held == []
    assert after == [HEAD]


def test_a_streamed_body_follows_its_head_in_order() -> None:
    async def scenario() -> list[bytes]:
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(HEAD)
        await asyncio.sleep(0)
        transport.write(b"part 1")
        transport.writelines([b"part ", b"2"])
        return real.writes

    assert run(scenario) == [HEAD, b"part 1", b"part 2"]


def test_closing_sends_a_held_head_first_and_aborting_drops_it() -> None:
    async def scenario() -> tuple[RecordingTransport, RecordingTransport]:
        loop = asyncio.get_running_loop()
        closed, aborted = RecordingTransport(), RecordingTransport()
        closing = CoalescingTransport(closed, loop)
        closing.write(HEAD)
        closing.close()
        aborting = CoalescingTransport(aborted, loop)
        aborting.write(HEAD)
        aborting.abort()
        await asyncio.sleep(0)  # the flushes scheduled by the writes find nothing held
        return closed, aborted

    closed, aborted = run(scenario)
    assert closed.closed and closed.writes == [HEAD]
    assert aborted.aborted and aborted.writes == []


def test_other_calls_reach_the_real_transport() -> None:
    async def scenario() -> Any:
        real = RecordingTransport()
        return CoalescingTransport(real, asyncio.get_running_loop()).get_extra_info("peername")

    assert run(scenario) == ("127.0.0.1", 1234)


def _data_segments_received(sock: socket.socket) -> int:
    # struct tcp_info (linux/tcp.h, Linux 4.6+): tcpi_data_segs_in is the u32 at byte 152. Segments
    # with data only: a bare ACK (the server's delayed ACK of a request it was slow to answer
    # on a loaded machine) is not part of the answer.
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    assert len(info) >= 156, "this kernel's tcp_info has no tcpi_data_segs_in"
    return int(struct.unpack_from("I", info, 152)[0])


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    def more() -> bytes:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before answering in full"
        return chunk

    data = b""
    while b"\r\n\r\n" not in data:
        data += more()
    head, _, body = data.partition(b"\r\n\r\n")
    headers = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:])
    length = int(headers[b"content-length"])
    while len(body) < length:
        body += more()
    return head, body


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's TCP_INFO segment counters")
def test_the_server_sends_each_answer_in_one_tcp_segment(tmp_path: Path, passenger: dict) -> None:
    """Counted by the client's kernel: 2 segments per answer is uvicorn's own protocol."""
    from tests.reliability.support import uvicorn

    answers = 10
    with uvicorn({"STORE_URL": f"sqlite:///{tmp_path / 'p.db'}"}, tmp_path / "uvicorn.log") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            segments = []
            for k in range(answers):
                body = json.dumps({"id": f"segments-{k}", "observation": passenger}).encode()
                before = _data_segments_received(sock)
                sock.sendall(
                    b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                # Read to the body's last byte: every segment of this answer has been counted then.
                head, answer = _read_response(sock)
                segments.append(_data_segments_received(sock) - before)
                assert head.startswith(b"HTTP/1.1 200"), head
                assert json.loads(answer)["id"] == f"segments-{k}"

    assert segments == [1] * answers, segments
