"""Run the ASGI app under uvicorn, with its workers sharing a listening socket made here.

    python -m adapters.serve --host 0.0.0.0 --port 8000 --workers 2 [uvicorn options...]

Why not plain `uvicorn --workers N`: uvicorn 0.54 then binds the socket with protocol 0, so
asyncio never sets TCP_NODELAY on accepted connections and every keep-alive request after the
first waits about 40 ms for the client's delayed ACK (Kludex/uvicorn#3149; measured by
tests/reliability/test_concurrency.py). Linux copies TCP_NODELAY from the listening socket to
the connections it accepts, so this launcher sets it there and hands the socket to uvicorn.
It also picks uvicorn's httptools protocol on a transport that sends a response's head and
body in one write (adapters/http/protocol.py). Any other option is passed to uvicorn
unchanged, and wins over these.
"""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn.main

APP = "adapters.asgi:app"
HTTP_PROTOCOL = "adapters.http.protocol:CoalescingHttpToolsProtocol"


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args, uvicorn_args = parser.parse_known_args(argv)
    sock = listening_socket(args.host, args.port)
    uvicorn.main.main([APP, "--fd", str(sock.fileno()), "--http", HTTP_PROTOCOL, *uvicorn_args])


if __name__ == "__main__":
    main(sys.argv[1:])
