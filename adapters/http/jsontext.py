"""JSON as the app writes it (answers, metrics lines): compact, UTF-8, no NaN.

The encoder is built once: `json.dumps` with any option builds a new `JSONEncoder` per call,
about 4 µs here, and a prediction request writes JSON several times.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

_COMPACT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_bytes(value: Any) -> bytes:
    return _COMPACT.encode(value).encode("utf-8")


def json_response(value: Any, status_code: int = 200) -> Response:
    """What Starlette's JSONResponse sends, without its per-call encoder."""
    return Response(json_bytes(value), status_code=status_code, media_type="application/json")
