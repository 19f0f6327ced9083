"""The Starlette app: routes that parse requests, call the service and shape its answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.http.auth import ApiKeyGuard
from adapters.http.body import check_content_encoding, check_content_type, parse_json, read_body
from adapters.http.errors import HttpError, MethodNotAllowed
from adapters.http.jsontext import json_bytes, json_response
from adapters.http.metrics import EVENTS as METRIC_EVENTS
from adapters.http.metrics import MEDIA_TYPE as METRICS_MEDIA_TYPE
from adapters.http.metrics import outcome_events, prediction_events
from adapters.http.middleware import ROUTE, RequestContext
from adapters.http.operations import Operation, operations
from adapters.http.problems import INTERNAL, STORE_UNAVAILABLE, from_starlette, problem_for
from adapters.http.shapes import RequestShapes, list_limit, path_id, stats_query
from adapters.logs import JsonMessage
from adapters.settings import Settings
from core.errors import CoreError
from core.records import id_key
from core.service import MAX_LIST_LIMIT, PredictionService, check_true_class

if TYPE_CHECKING:
    from adapters.http.prometheus import PrometheusMetrics

logger = logging.getLogger("sklearn_serve.http")

# What the app answers as a problem (every other exception is an internal error, a 500).
PROBLEM_ERRORS = (HttpError, CoreError, HTTPException)

Endpoint = Callable[[Request], Awaitable[Response]]
STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = ("dashboard.html", "dashboard.js", "dashboard.css")
# The dashboard runs only its own script and style, and talks only to this origin.
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class Api:
    """The endpoints, bound to one service and one configuration."""

    def __init__(self, service: PredictionService, settings: Settings, metrics: PrometheusMetrics | None) -> None:
        self.service = service
        self.metrics = metrics
        self.guard = ApiKeyGuard(settings.api_key)
        self.shapes = RequestShapes.of(service.model, settings.max_batch, settings.max_string_length)
        self.operations = operations(
            self.shapes,
            max_batch=settings.max_batch,
            metrics=metrics is not None,
            auth_enabled=self.guard.enabled,
            predict_requires_key=settings.predict_requires_key,
        )
        # Static answers are rendered once: the model and the document cannot change while running.
        self.model_card = json_bytes(service.model.card())
        self.static = {name: (STATIC / name).read_bytes() for name in STATIC_FILES}
        self.max_body_bytes = settings.max_body_bytes

    @cached_property
    def documentation(self) -> tuple[bytes, str]:
        """The OpenAPI document as JSON and as HTML, made when first asked for: a cold start
        that is not asked for it does not pay for it."""
        from adapters.http.openapi import openapi_document, render_html

        document = openapi_document(
            self.service.model, self.operations,
            max_body_bytes=self.max_body_bytes, auth_enabled=self.guard.enabled,
        )
        return json_bytes(document), render_html(document)

    async def json_body(self, request: Request) -> Any:
        check_content_type(request.headers.get("content-type"))
        check_content_encoding(request.headers.get("content-encoding"))
        return parse_json(await read_body(request, self.max_body_bytes))

    async def predict(self, request: Request) -> Response:
        call = self.shapes.predict_call(await self.json_body(request))
        results = await self.service.predict_and_record(call.items, call.strict, call.is_batch)
        # An item repeated in the batch is answered twice but stored once.
        stored = {id_key(record.id): record for record, created in results if created}
        request.scope.setdefault("state", {})[METRIC_EVENTS] = prediction_events(
            (r.model_version, r.predicted_class) for r in stored.values()
        )
        if self.guard.enabled and not all(created for _, created in results) and not self.guard.allows(request.headers):
            # A replay returns the stored record, whose outcome is as private as /predictions':
            # without the key it comes back as it was made.
            results = [(record if created else record.as_made(), created) for record, created in results]
        if call.is_batch:
            return json_response({"predictions": [record.as_json() for record, _ in results]})
        return json_response(results[0][0].as_json())

    async def update(self, request: Request) -> Response:
        prediction_id, true_class = self.shapes.update_call(await self.json_body(request))
        record = await run_in_threadpool(self.service.record_outcome, prediction_id, true_class)
        outcome = outcome_events(check_true_class(true_class), record.predicted_class)
        request.scope.setdefault("state", {})[METRIC_EVENTS] = outcome
        return json_response(record.as_json())

    async def list_predictions(self, request: Request) -> Response:
        limit = list_limit(request.query_params.get("limit"))
        page = await run_in_threadpool(self.service.list, limit, request.query_params.get("cursor") or None)
        return json_response({"predictions": [r.as_json() for r in page.items], "next_cursor": page.next_cursor})

    async def get_prediction(self, request: Request) -> Response:
        record = await run_in_threadpool(self.service.get, path_id(request.path_params["prediction_id"]))
        return json_response(record.as_json())

    async def list_db_contents(self, request: Request) -> Response:
        page = await run_in_threadpool(self.service.list, MAX_LIST_LIMIT, None)
        return json_response([r.as_json() for r in page.items])

    async def health(self, request: Request) -> Response:
        await run_in_threadpool(self.service.store.check)
        return json_response({"status": "ok", "model_version": self.service.model.version, "store": "ok"})

    async def model(self, request: Request) -> Response:
        return Response(self.model_card, media_type="application/json")

    async def stats(self, request: Request) -> Response:
        query = stats_query(request.query_params)
        report = await run_in_threadpool(self.service.stats, query.model_version, query.since, query.until)
        return Response(json_bytes(report), media_type="application/json")

    async def prometheus(self, request: Request) -> Response:
        # Reads every worker's file: off the event loop.
        assert self.metrics is not None, "the route exists only with metrics"
        text = await run_in_threadpool(self.metrics.exposition)
        return Response(text, media_type=METRICS_MEDIA_TYPE)

    async def dashboard(self, request: Request) -> Response:
        return Response(self.static["dashboard.html"], media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": DASHBOARD_CSP, "Cache-Control": "no-cache"})

    async def dashboard_script(self, request: Request) -> Response:
        return Response(self.static["dashboard.js"], media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    async def dashboard_style(self, request: Request) -> Response:
        return Response(self.static["dashboard.css"], media_type="text/css; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    async def openapi_json(self, request: Request) -> Response:
        return Response(self.documentation[0], media_type="application/json")

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(
            self.documentation[1], headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
        )

    def route(self, operation: Operation, endpoint: Endpoint) -> Endpoint:
        """`endpoint` as its path serves every method: named by the operation's path template in
        the log and the metrics (a 405 included), its method only (GET with HEAD), behind the API
        key check when the operation needs the key (before the body is read)."""
        guarded = operation.needs_key and self.guard.enabled
        check = self.guard.check
        template, method = operation.path, operation.method
        methods = {method, "HEAD"} if method == "GET" else {method}
        allowed = ", ".join(sorted(methods))

        async def served(request: Request) -> Response:
            request.scope["state"][ROUTE] = template
            if request.method not in methods:
                raise MethodNotAllowed(request.method, allowed)
            if guarded:
                check(request.headers)
            return await endpoint(request)

        return served


def build_app(service: PredictionService, settings: Settings, serve_metrics: bool = True) -> Starlette:
    """The HTTP app for `service`: the same one behind uvicorn and behind Lambda.

    Without `serve_metrics` (Lambda's: each container would count alone, and CloudWatch counts
    the invocations), there is no /metrics and prometheus_client is not imported.
    """
    metrics = None
    if serve_metrics:
        from adapters.http.prometheus import PrometheusMetrics

        metrics = PrometheusMetrics(settings.metrics_dir)
    api = Api(service, settings, metrics)
    endpoints: dict[str, Endpoint] = {
        "predict": api.predict,
        "update": api.update,
        "listPredictions": api.list_predictions,
        "getPrediction": api.get_prediction,
        "listDbContents": api.list_db_contents,
        "health": api.health,
        "model": api.model,
        "stats": api.stats,
        "metrics": api.prometheus,
        "dashboard": api.dashboard,
        "dashboardScript": api.dashboard_script,
        "dashboardStyle": api.dashboard_style,
        "openapi": api.openapi_json,
        "docs": api.docs,
    }
    # Each path has one operation; its endpoint sees every method, so that a 405 is logged and
    # counted under the route's template like any other answer of it.
    served = {op.operation_id: api.route(op, endpoints[op.operation_id]) for op in api.operations}
    routes = [Route(op.route or op.path, EveryMethod(served[op.operation_id]), name=op.operation_id)
              for op in api.operations]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestContext, metrics=metrics),
            Middleware(PredictShortcut, endpoint=served["predict"]),
        ],
        exception_handlers={error: _problem for error in PROBLEM_ERRORS},
    )
    # `/predict/` is an unknown route (404), not a redirect that no client or schema expects.
    app.router.redirect_slashes = False
    app.state.api = api
    return app


class EveryMethod:
    """An endpoint as an ASGI app: Starlette's Route hands an app every method, where it
    would give a function endpoint GET only (the endpoint checks the method itself)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


class PredictShortcut:
    """`POST /predict`, the request every prediction makes, answered without the router and
    Starlette's exception middleware: the same endpoint and the same problem answers, for less
    CPU per request (measured in docs/performance.md). Every other request goes on to the app."""

    def __init__(self, app: ASGIApp, endpoint: Endpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/predict":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.endpoint(request)
        except PROBLEM_ERRORS as exc:
            response = await _problem(request, exc)
        await response(scope, receive, send)


async def _problem(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        exc = from_starlette(exc, request.method, request.url.path)  # type: ignore[assignment]
    problem = problem_for(exc)
    request_id = getattr(request.state, "request_id", None)
    if problem.type is STORE_UNAVAILABLE:
        logger.warning(JsonMessage({"event": "store_unavailable", "request_id": request_id, "error": str(exc)}))
    elif problem.type is INTERNAL:
        logger.error(JsonMessage({"event": "internal_error", "request_id": request_id}), exc_info=exc)
    return problem.response(request_id)

