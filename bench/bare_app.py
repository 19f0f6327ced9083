"""A bare ASGI app answering every request with the same 200-byte JSON body: uvicorn's ceiling."""

from __future__ import annotations

from typing import Any

BODY = b'{"status":"ok","padding":"' + b"x" * 172 + b'"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
