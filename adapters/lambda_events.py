"""The Lambda entry's guard: every event gets a response dict, never an exception.

Lambda turns an exception into an opaque 502 (and, for asynchronous invokes, retries). Mangum
reads the event's fields as API Gateway, a Function URL or an ALB send them and raises on
anything else (`"headers": null`, a direct invoke with a bare observation, a body that is not
base64...). So each event is checked first: an event that is not a well-formed HTTP event gets a
400 problem+json in the shape of the event it came closest to (API Gateway v2's when it is not
even an object), and one log line saying what was wrong. The checks cover what Mangum reads;
whatever else makes Mangum fail while it reads the event is answered the same way.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Literal

from mangum import Mangum

from adapters.http.jsontext import json_bytes
from adapters.http.problems import BAD_EVENT, INTERNAL, MISCONFIGURED, PROBLEM_MEDIA_TYPE, Problem
from adapters.logs import JsonMessage

logger = logging.getLogger("sklearn_serve.lambda")

Shape = Literal["http-api-v2", "rest-api-v1", "alb"]
LambdaHandler = Callable[[Any, Any], dict[str, Any]]


def closest_shape(event: Any) -> Shape:
    """The kind of HTTP event `event` is, or comes closest to (in Mangum's order of inference)."""
    if not isinstance(event, Mapping):
        return "http-api-v2"
    context = event.get("requestContext")
    if isinstance(context, Mapping) and "elb" in context:
        return "alb"
    if event.get("version") == "2.0":
        return "http-api-v2"
    if "httpMethod" in event or "resource" in event or event.get("version") == "1.0":
        return "rest-api-v1"
    return "http-api-v2"


def event_problem(event: Any) -> str | None:
    """Why `event` is not an HTTP event this function can answer, or None when it is one."""
    if not isinstance(event, Mapping):
        return f"the event is {type(event).__name__}, not an object: invoke the function through its HTTP API"
    context = event.get("requestContext")
    if context is None:
        return (
            "the event has no requestContext: it is not an HTTP event (a direct invoke?); "
            "send requests through the function's HTTP API, e.g. POST /predict"
        )
    if not isinstance(context, Mapping):
        return "requestContext must be an object"
    shape = closest_shape(event)
    version = event.get("version")
    if shape != "alb" and version is not None and version not in ("1.0", "2.0"):
        return f"payload version {version!r} is not one of API Gateway's (1.0, 2.0)"
    problems = _http_api_v2(event, context) if shape == "http-api-v2" else _v1_and_alb(event, shape)
    return problems or _body_problem(event)


def _http_api_v2(event: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    http = context.get("http")
    if not isinstance(http, Mapping):
        return "requestContext.http must be an object (payload version 2.0)"
    for name in ("method", "path", "sourceIp"):
        if not isinstance(http.get(name), str) or not http[name]:
            return f"requestContext.http.{name} must be a non-empty string"
    if "headers" in event and not _is_str_map(event["headers"]):
        return "headers must be an object of strings"
    if "rawQueryString" in event and not isinstance(event["rawQueryString"], str):
        return "rawQueryString must be a string"
    cookies = event.get("cookies")
    if cookies is not None and not (isinstance(cookies, list) and all(isinstance(c, str) for c in cookies)):
        return "cookies must be a list of strings"
    return _host_problem(event.get("headers") or {})


def _v1_and_alb(event: Mapping[str, Any], shape: Shape) -> str | None:
    for name in ("httpMethod", "path"):
        if not isinstance(event.get(name), str) or not event[name]:
            return f"{name} must be a non-empty string"
    if shape == "rest-api-v1":
        identity = event["requestContext"].get("identity")
        if identity is not None and not isinstance(identity, Mapping):
            return "requestContext.identity must be an object"
    headers, multi = event.get("headers"), event.get("multiValueHeaders")
    if shape == "alb" and "multiValueHeaders" not in event and not _is_str_map(headers):
        # An ALB sends `headers`, or `multiValueHeaders` when the target group asks for them.
        return "headers must be an object of strings (or multiValueHeaders an object of lists)"
    if headers is not None and not _is_str_map(headers):
        return "headers must be an object of strings"
    if multi is not None and not _is_list_map(multi):
        return "multiValueHeaders must be an object of lists of strings"
    query, multi_query = event.get("queryStringParameters"), event.get("multiValueQueryStringParameters")
    if query is not None and not _is_str_map(query):
        return "queryStringParameters must be an object of strings"
    if multi_query is not None and not _is_list_map(multi_query):
        return "multiValueQueryStringParameters must be an object of lists of strings"
    merged = {k.lower(): v for k, v in (headers or {}).items()}
    merged.update({k.lower(): v[-1] for k, v in (multi or {}).items() if v})
    return _host_problem(merged)


def _body_problem(event: Mapping[str, Any]) -> str | None:
    body, encoded = event.get("body"), event.get("isBase64Encoded", False)
    if body is not None and not isinstance(body, str):
        return f"body must be a string (the request's text), not {type(body).__name__}"
    if not isinstance(encoded, bool):
        return "isBase64Encoded must be true or false"
    if encoded and body:
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return "isBase64Encoded is true but the body is not base64"
    return None


def _host_problem(headers: Mapping[str, str]) -> str | None:
    # Mangum reads the server's port from Host or X-Forwarded-Port as an integer.
    lowered = {k.lower(): v for k, v in headers.items()}
    host, port = lowered.get("host", ""), lowered.get("x-forwarded-port")
    if host.count(":") > 1 or (":" in host and not host.partition(":")[2].isdigit()):
        return "the Host header must be a host name with an optional numeric port"
    if ":" not in host and port is not None and not port.isdigit():
        return "the X-Forwarded-Port header must be a number"
    return None


def _is_str_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _is_list_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in value.items()
    )


def problem_event_response(event: Any, problem: Problem, request_id: str | None = None) -> dict[str, Any]:
    """A Lambda response carrying `problem` as problem+json, in the response format of the event
    `event` comes closest to (an ALB with multi-value headers on gets those, and only those)."""
    shape = closest_shape(event)
    multi_value_headers = (
        shape == "alb" and isinstance(event, Mapping) and isinstance(event.get("multiValueHeaders"), Mapping)
    )
    headers = {"content-type": PROBLEM_MEDIA_TYPE, **{k.lower(): v for k, v in problem.headers.items()}}
    if request_id:
        headers["x-request-id"] = request_id
    response: dict[str, Any] = {
        "statusCode": problem.status,
        "body": json_bytes(problem.body(request_id)).decode(),
        "isBase64Encoded": False,
    }
    if shape == "alb":
        response["statusDescription"] = f"{problem.status} {HTTPStatus(problem.status).phrase}"
    if multi_value_headers:
        response["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    else:
        response["headers"] = headers
    return response


def _aws_request_id(context: Any) -> str | None:
    value = getattr(context, "aws_request_id", None)
    return value if isinstance(value, str) else None


class GuardedHandler:
    """`adapter(event, context)` for HTTP events; a problem response for everything else."""

    def __init__(self, adapter: Mangum) -> None:
        self.adapter = adapter

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        problem = event_problem(event)
        if problem is None:
            try:
                # What Mangum reads of the event, read before the app runs: a failure here is the event's.
                reader = self.adapter.infer(event, context)
                reader.scope, reader.body  # noqa: B018
            except Exception as e:  # noqa: BLE001 - any failure to read the event is a bad event
                problem = f"the event cannot be read as an HTTP request ({type(e).__name__}: {e})"
        if problem is not None:
            return self.refuse(event, context, problem)
        try:
            return self.adapter(event, context)
        except Exception:  # noqa: BLE001 - the app answers its own errors; this is a last resort
            request_id = _aws_request_id(context)
            logger.exception(JsonMessage({"event": "lambda_internal_error", "aws_request_id": request_id}))
            internal = Problem(INTERNAL, "an unexpected error occurred; quote the request id when reporting it")
            return problem_event_response(event, internal, request_id)

    def refuse(self, event: Any, context: Any, detail: str) -> dict[str, Any]:
        request_id = _aws_request_id(context)
        logger.warning(JsonMessage({"event": "bad_lambda_event", "aws_request_id": request_id,
                                    "shape": closest_shape(event), "problem": detail}))
        return problem_event_response(event, Problem(BAD_EVENT, detail), request_id)


class UnavailableHandler:
    """What the function answers when its cold start could not build the app: 503, and why in the log."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        logger.error(JsonMessage({"event": "misconfigured", "aws_request_id": _aws_request_id(context),
                                  "problem": self.reason}))
        misconfigured = Problem(MISCONFIGURED, "the service is misconfigured; see its log")
        return problem_event_response(event, misconfigured, _aws_request_id(context))
