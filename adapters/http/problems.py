"""RFC 9457 problem details, and the one table that turns errors into HTTP statuses.

Nothing else in the code base knows a status code: the core raises errors that carry data,
adapters/http/errors.py adds the HTTP adapter's own, and `problem_for` looks each one up here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response

from adapters.http.errors import (
    BodyTooLarge,
    InvalidCredentials,
    MalformedRequest,
    MethodNotAllowed,
    MissingCredentials,
    RouteNotFound,
    UnsupportedMediaType,
)
from adapters.http.jsontext import json_bytes
from core.errors import (
    ConflictingPrediction,
    InvalidObservation,
    ModelError,
    StorageError,
    UnknownPrediction,
)

PROBLEM_BASE = "https://errors.sklearn-serve.dev/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
AUTH_CHALLENGE = 'Bearer realm="sklearn-serve"'


@dataclass(frozen=True)
class ProblemType:
    """One kind of error: its stable `type` URI, HTTP status, short title and what it means."""

    name: str
    status: int
    title: str
    meaning: str

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.name


MALFORMED = ProblemType(
    "malformed-request", 400, "Malformed request",
    "The body is not JSON this API accepts: a syntax error, text that is not UTF-8, NaN or Infinity, "
    "a number outside the range of a 64-bit float, a lone surrogate, or nesting deeper than 32 levels.",
)
UNAUTHORIZED = ProblemType(
    "unauthorized", 401, "API key required",
    "The route needs the API key (Authorization: Bearer <key> or X-API-Key: <key>) and it is missing or wrong.",
)
NOT_FOUND = ProblemType("not-found", 404, "Not found", "No route has this path.")
UNKNOWN_PREDICTION = ProblemType(
    "unknown-prediction", 404, "Unknown prediction", "No prediction is stored under this id."
)
METHOD_NOT_ALLOWED = ProblemType(
    "method-not-allowed", 405, "Method not allowed", "The path exists, but not with this method (see Allow)."
)
CONFLICT = ProblemType(
    "conflicting-prediction", 409, "Conflicting prediction",
    "The id is already stored with a different observation; nothing was stored. Retries with the same "
    "observation are safe and return the stored prediction.",
)
TOO_LARGE = ProblemType(
    "body-too-large", 413, "Request body too large", "The body is longer than MAX_BODY_BYTES; nothing was read past it."
)
UNSUPPORTED_MEDIA_TYPE = ProblemType(
    "unsupported-media-type", 415, "Unsupported media type",
    "Bodies must be JSON: Content-Type application/json (or any application/*+json), UTF-8, not "
    "compressed (no Content-Encoding but identity); a missing Content-Type is read as JSON.",
)
VALIDATION = ProblemType(
    "validation", 422, "Invalid request",
    "The JSON is well formed but does not fit the request schema; `errors` names every bad field "
    "(batch items as observations[<index>].<field>).",
)
INTERNAL = ProblemType(
    "internal", 500, "Internal error",
    "Something failed on the server's side; the response says nothing more, the log has the details "
    "under the same request id.",
)
BAD_EVENT = ProblemType(
    "bad-event", 400, "Not an HTTP event",
    "AWS Lambda only: the function was invoked with an event that is not a well-formed API Gateway, "
    "Function URL or ALB request (a direct invoke, a field of the wrong type, a body that is not base64); "
    "`detail` says which field.",
)
MISCONFIGURED = ProblemType(
    "misconfigured", 503, "Service misconfigured",
    "AWS Lambda only: the function's cold start could not build the service (a bad setting or model); "
    "its log names the variable and the fix. Nothing was read or stored.",
)
STORE_UNAVAILABLE = ProblemType(
    "store-unavailable", 503, "Store unavailable",
    "The prediction store cannot be reached or failed; nothing was half-written. Retry later.",
)

PROBLEM_TYPES: tuple[ProblemType, ...] = (
    MALFORMED, UNAUTHORIZED, NOT_FOUND, UNKNOWN_PREDICTION, METHOD_NOT_ALLOWED, CONFLICT,
    TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, VALIDATION, INTERNAL, STORE_UNAVAILABLE, BAD_EVENT, MISCONFIGURED,
)

# The table: error class -> problem type. Subclasses inherit their base's entry
# (InvalidRequest is an InvalidObservation; every other exception is INTERNAL).
ERROR_TABLE: Mapping[type[BaseException], ProblemType] = {
    MalformedRequest: MALFORMED,
    MissingCredentials: UNAUTHORIZED,
    InvalidCredentials: UNAUTHORIZED,
    RouteNotFound: NOT_FOUND,
    UnknownPrediction: UNKNOWN_PREDICTION,
    MethodNotAllowed: METHOD_NOT_ALLOWED,
    ConflictingPrediction: CONFLICT,
    BodyTooLarge: TOO_LARGE,
    UnsupportedMediaType: UNSUPPORTED_MEDIA_TYPE,
    InvalidObservation: VALIDATION,
    ModelError: INTERNAL,
    StorageError: STORE_UNAVAILABLE,
}


@dataclass(frozen=True)
class Problem:
    """A problem ready to send: its type, a human `detail`, extension members and extra headers."""

    type: ProblemType
    detail: str
    extensions: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return self.type.status

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type.uri,
            "title": self.type.title,
            "status": self.type.status,
            "detail": self.detail,
        }
        body.update(self.extensions)
        if request_id:
            body["request_id"] = request_id
        return body

    def response(self, request_id: str | None = None) -> Response:
        return ProblemResponse(self.body(request_id), status_code=self.status, headers=dict(self.headers))


class ProblemResponse(Response):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def problem_type_of(exc: BaseException) -> ProblemType:
    for cls in type(exc).__mro__:
        problem_type = ERROR_TABLE.get(cls)
        if problem_type is not None:
            return problem_type
    return INTERNAL


def problem_for(exc: BaseException) -> Problem:
    """The problem to answer `exc` with; unexpected exceptions reveal nothing about themselves."""
    problem_type = problem_type_of(exc)
    if isinstance(exc, InvalidObservation):
        count = len(exc.errors)
        return Problem(
            problem_type,
            f"{count} field{'s' if count != 1 else ''} of the request {'are' if count != 1 else 'is'} invalid: "
            + "; ".join(f"{e.field}: {e.message}" for e in exc.errors[:5])
            + ("; …" if count > 5 else ""),
            {"errors": [e.as_dict() for e in exc.errors]},
        )
    if isinstance(exc, (UnknownPrediction, ConflictingPrediction)):
        return Problem(problem_type, str(exc), {"id": exc.prediction_id})
    if isinstance(exc, MissingCredentials):
        return Problem(problem_type, str(exc), headers={"WWW-Authenticate": AUTH_CHALLENGE})
    if isinstance(exc, InvalidCredentials):
        return Problem(
            problem_type, str(exc), headers={"WWW-Authenticate": AUTH_CHALLENGE + ', error="invalid_token"'}
        )
    if isinstance(exc, MethodNotAllowed):
        return Problem(problem_type, str(exc), headers={"Allow": exc.allowed})
    if isinstance(exc, BodyTooLarge):
        return Problem(problem_type, str(exc), {"max_body_bytes": exc.limit})
    if isinstance(exc, (MalformedRequest, UnsupportedMediaType, RouteNotFound)):
        return Problem(problem_type, str(exc))
    if problem_type is STORE_UNAVAILABLE:
        # The store's message names files and tables: it goes to the log, not to the client.
        return Problem(problem_type, "the prediction store is unavailable; nothing was changed, retry later")
    return Problem(INTERNAL, "an unexpected error occurred; quote the request id when reporting it")


def from_starlette(exc: HTTPException, method: str, path: str) -> BaseException:
    """Starlette's router raises HTTPException for unknown paths and wrong methods."""
    if exc.status_code == 405:
        # Starlette joins a set of methods: sort them, so the header is the same on every run.
        allowed = (exc.headers or {}).get("Allow", "")
        return MethodNotAllowed(method, ", ".join(sorted(m.strip() for m in allowed.split(",") if m.strip())))
    if exc.status_code == 404:
        return RouteNotFound(path)
    return exc
