"""Run the ASGI app under uvicorn, with its workers sharing a listening socket made here.

    python -m adapters.serve --host 0.0.0.0 --port 8000 [uvicorn options...]

Before any worker starts, every setting is read, the model loaded and the store asked to take a
write (adapters.bootstrap.check_startup): a bad setting ends the command at once with exit status
1 and one line naming the variable, its value and the fix, where uvicorn's workers would each
print a traceback (and, in uvicorn's supervisor, be restarted). The number of workers is
WEB_CONCURRENCY (1 when unset).

Why not plain `uvicorn --workers N`: uvicorn 0.54 then binds the socket with protocol 0, so
asyncio never sets TCP_NODELAY on accepted connections and every keep-alive request after the
first waits about 40 ms for the client's delayed ACK (Kludex/uvicorn#3149; measured by
tests/reliability/test_concurrency.py). Linux copies TCP_NODELAY from the listening socket to
the connections it accepts, so this launcher sets it there and hands the socket to uvicorn.
It also picks uvicorn's httptools protocol with a deadline for reading each request
(adapters/http/protocol.py). Any other option is passed to uvicorn
unchanged, and wins over these.

The workers add up their metrics in a directory made fresh for this server
(PROMETHEUS_MULTIPROC_DIR, adapters/http/metrics.py) unless one is set; directories of servers
that are gone are removed.

uvicorn is then run through its own command line (`python -m uvicorn`, its public interface),
which replaces this process: the same pid for the platform's signals, the socket inherited.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from adapters.bootstrap import ConfigurationError, check_startup, print_cannot_start
from adapters.http.metrics import MULTIPROCESS_VARIABLE
from adapters.settings import Settings

APP = "adapters.asgi:app"
HTTP_PROTOCOL = "adapters.http.protocol:DeadlineHttpToolsProtocol"
# Exit status of a start refused for a setting (uvicorn's own startup failure is 3).
BAD_SETTING = 1


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigurationError("PORT", port, f"cannot listen on {host}:{port} ({e.strerror})",
                                 "stop whatever listens there, or choose another PORT (and HOST)") from None
    sock.set_inheritable(True)
    return sock


def fresh_metrics_directory(pid: int) -> Path:
    """An empty directory for the metrics of the server whose supervisor is process `pid`.

    Under one directory of this user's in the temp directory, one per server, named by its
    pid: those whose process has ended are removed, and this server's is emptied (its pid may
    be a dead server's).
    """
    base = Path(tempfile.gettempdir()) / f"sklearn-serve-metrics-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    if base.stat().st_uid != os.getuid():
        raise PermissionError(f"{base} belongs to another user")
    for entry in base.iterdir():
        if entry.name.isdigit() and (int(entry.name) == pid or not _running(int(entry.name))):
            shutil.rmtree(entry, ignore_errors=True)
    directory = base / str(pid)
    directory.mkdir(mode=0o700)
    return directory


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigurationError("PORT", raw, "is not a TCP port", "use a number from 1 to 65535")
    return int(raw)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    # Parsed below, so that a bad $PORT is reported like any other setting.
    parser.add_argument("--port", default="8000")
    args, uvicorn_args = parser.parse_known_args(argv)
    try:
        settings = Settings.from_env(os.environ)
        check_startup(settings)
        sock = listening_socket(args.host, _port(args.port))
    except ConfigurationError as e:
        print_cannot_start(e)
        raise SystemExit(BAD_SETTING) from None
    if settings.metrics_dir is None:
        # Read by prometheus_client in every worker (adapters/http/metrics.py), and by its Settings.
        try:
            os.environ[MULTIPROCESS_VARIABLE] = str(fresh_metrics_directory(os.getpid()))
        except OSError as e:
            # The service must never fail because of its metrics: each worker counts its own.
            print(f"sklearn-serve: metrics are counted per worker: no directory to share ({e})",
                  file=sys.stderr, flush=True)
    workers = ["--workers", str(settings.web_concurrency)] if settings.web_concurrency else []
    command = [sys.executable, "-m", "uvicorn", APP, "--fd", str(sock.fileno()), "--http", HTTP_PROTOCOL,
               *workers, *uvicorn_args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main(sys.argv[1:])
