"""Reading a request body: bounded in size, JSON only, and only JSON the rest of the code can keep.

The checks here are what stands between a client's bytes and a 500: every value that comes out
of `parse_json` can be stored, compared and sent back as JSON without raising.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from starlette.requests import Request

from adapters.http.errors import BodyTooLarge, MalformedRequest, UnsupportedContentEncoding, UnsupportedMediaType

MAX_DEPTH = 32
# Any integer longer than this cannot be a float anyway; refusing it before int() also avoids
# Python's 4300-digit conversion limit.
_MAX_INT_CHARS = 400


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def check_content_type(content_type: str | None) -> None:
    """Accept JSON media types; a missing (or empty) Content-Type is read as JSON.

    Missing is accepted so that minimal clients work; anything else (`text/plain`, curl's default
    `application/x-www-form-urlencoded`, a charset other than UTF-8) is refused rather than guessed.
    """
    if not content_type:
        return
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise UnsupportedMediaType(content_type)
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(content_type)


def check_content_encoding(content_encoding: str | None) -> None:
    """Only an unencoded body is read: a compressed one would be misread, or decompressed past the limit."""
    if content_encoding and content_encoding.strip().lower() != "identity":
        raise UnsupportedContentEncoding(content_encoding)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed `limit` bytes.

    Content-Length is checked first, so an announced oversize body is not read at all; the
    streamed bytes are counted too, because chunked bodies announce nothing and a client may lie.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise MalformedRequest("Content-Length must be a whole number of bytes")
        if int(declared) > limit:
            raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The JSON value of `body`, or MalformedRequest saying what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not UTF-8 text") from None
    if not text.strip():
        raise MalformedRequest("the body is empty; send a JSON object")
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_float_sized_int,
            object_pairs_hook=_object_without_repeats,
        )
    except _Refused as e:
        raise MalformedRequest(e.reason) from None
    except RecursionError:
        raise MalformedRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise MalformedRequest(f"the body is not valid JSON: {e}") from None
    # Both walks are skipped on the common path: a shallow body has few brackets, and a lone
    # surrogate can only come from a \u escape.
    if text.count("{") + text.count("[") > MAX_DEPTH or "\\u" in text:
        _check_tree(value)
    return value


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # With a repeated key, which value counts depends on the parser: a proxy or log reader taking
    # the first would see another request than the one stored. Refuse the ambiguity.
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _Refused(f"the key {repeated[:40]!r} appears twice in one JSON object")
    return value


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number; send a finite number or null")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]} is too large for a 64-bit float")
    return value


def _float_sized_int(text: str) -> int:
    # Numbers go through float arithmetic in the model; one that overflows a float is refused
    # here as bad input instead of failing later.
    if len(text) > _MAX_INT_CHARS or abs(value := int(text)) > sys.float_info.max:
        raise _Refused(f"the number {text[:40]}… is too large for a 64-bit float")
    return value


def _check_tree(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                raise MalformedRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels")
            for key, child in node.items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                raise MalformedRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels")
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, str):
            _check_text(node)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedRequest("the JSON contains a lone surrogate escape (\\ud800-\\udfff)") from None
