"""Per-request context as pure ASGI middleware: request id, one access log line, metrics, the last-resort 500."""

from __future__ import annotations

import logging
import random
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.metrics import EVENTS, RequestCounter
from adapters.http.problems import problem_for
from adapters.logs import JsonMessage

REQUEST_ID_HEADER = "x-request-id"
# Where a route's endpoint writes the template it serves (in the ASGI scope's state), for the
# log line and the metrics: raw paths carry prediction ids.
ROUTE = "route_template"
MAX_REQUEST_ID_LENGTH = 200
# The bits that make 128 random bits a version 4, RFC 4122 UUID.
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)

logger = logging.getLogger("sklearn_serve.http")


def new_request_id() -> str:
    """A random (version 4) UUID's 32 hex digits.

    From Python's generator, not `uuid.uuid4()`'s os.urandom: a request id must be unique, not
    unguessable, and the system call made uuid4 ten times as costly (4.6 µs against 0.4 µs).
    """
    return "%032x" % (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)


def valid_request_id(value: str | None) -> bool:
    """A client's id is kept when it is 1 to 200 printable ASCII characters (safe to log and echo)."""
    return value is not None and 0 < len(value) <= MAX_REQUEST_ID_LENGTH and all(" " <= ch <= "~" for ch in value)


class RequestContext:
    """Outermost middleware of the app.

    Gives every request an id (the client's X-Request-ID when valid, else a new uuid4 hex), puts
    it in `request.state.request_id` and the response's X-Request-ID, logs one JSON line per
    request, counts it in `metrics`, and turns any exception that escaped the app into a bare 500
    problem (details go to the log only). The route is the template the endpoint wrote in the
    state (`ROUTE`; None when no route matched), so the log and the metrics never hold raw paths.
    """

    def __init__(self, app: ASGIApp, metrics: RequestCounter | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False
        counted = False

        def count() -> None:
            nonlocal counted
            if self.metrics is not None and not counted:
                counted = True
                events = scope["state"].get(EVENTS, ())
                self.metrics.request(
                    scope["state"].get(ROUTE), scope["method"], status, time.perf_counter() - started, events
                )

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                headers["X-Content-Type-Options"] = "nosniff"
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Counted before the last byte leaves: a client that has its answer, then scrapes
                # (whichever worker answers), finds the request counted.
                count()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            status = 499  # nginx's "client closed request": nothing can be sent back
        except Exception:
            logger.exception(JsonMessage({"event": "unhandled_error", "request_id": request_id}))
            if response_started:
                raise
            await problem_for(RuntimeError()).response(request_id)(scope, receive, send_with_id)
        finally:
            count()
            logger.info(
                JsonMessage(
                    {
                        "request_id": request_id,
                        "method": scope["method"],
                        "route": scope["state"].get(ROUTE),
                        "status": status,
                        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                    }
                )
            )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if valid_request_id(text) else None
    return None
