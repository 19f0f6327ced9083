"""Every operation of the API, declared once: the app serves these routes (adapters/http/app.py)
and the OpenAPI document describes the same ones (adapters/http/openapi.py)."""

from __future__ import annotations

from typing import Any, NamedTuple

from adapters.http.contract import Array, Documented, OneOf, Shape
from adapters.http.metrics import FAMILIES as METRIC_FAMILIES
from adapters.http.metrics import PREFIX as METRIC_PREFIX
from adapters.http.problems import (
    CONFLICT,
    MALFORMED,
    STORE_UNAVAILABLE,
    TOO_LARGE,
    UNKNOWN_PREDICTION,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    ProblemType,
)
from adapters.http.responses import HEALTH, PREDICTION_BATCH, PREDICTION_PAGE, PREDICTION_RECORD, STATS
from adapters.http.shapes import CURSOR, LIMIT, PATH_ID, STATS_PARAMETERS, RequestShapes
from core.service import MAX_LIST_LIMIT

JSON = "application/json"
TEXT = Documented({"type": "string"})
BODY_PROBLEMS = (MALFORMED, TOO_LARGE, UNSUPPORTED_MEDIA_TYPE)


class Operation(NamedTuple):
    """One method on one path. `path` is the template logs and metrics name it by; `route` is
    Starlette's, where it differs. A 500 can answer any operation, and a 401 any that needs the
    API key (when one is configured): neither is listed in `problems`."""

    operation_id: str
    method: str
    path: str
    summary: str
    description: str
    answer: str
    body: Shape
    media_type: str = JSON
    problems: tuple[ProblemType, ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    request: Shape | None = None
    needs_key: bool = False
    route: str | None = None


def operations(
    shapes: RequestShapes, *, max_batch: int, metrics: bool, auth_enabled: bool, predict_requires_key: bool
) -> tuple[Operation, ...]:
    """The API's operations; /metrics only where `metrics` is served. Outcome data (the quality
    figures, and the outcome counts among the metrics) is as private as the outcomes themselves:
    those operations need the key."""
    predict_and_stats = (
        Operation(
            "predict", "POST", "/predict",
            "Predict one observation or a batch, and record the answer",
            "Send `{id, observation}` for one prediction or `{observations: [{id, observation}, ...]}` for "
            f"up to {max_batch}. Every prediction is stored under its id. Sending the same id with the "
            "same observation again returns the stored prediction unchanged (safe retries); the same id "
            "with another observation is a 409. A batch is all or nothing: if any item is invalid, "
            "nothing is stored and the 422 names every bad field as `observations[<index>].<field>`. "
            "With `strict: true`, keys that are not features of the model are errors instead of warnings.",
            "The stored prediction (one) or predictions, in request order (batch)",
            OneOf((PREDICTION_RECORD, PREDICTION_BATCH)),
            problems=(*BODY_PROBLEMS, CONFLICT, VALIDATION, STORE_UNAVAILABLE),
            request=shapes.predict,
            needs_key=predict_requires_key,
        ),
        Operation(
            "update", "POST", "/update",
            "Record the true class of a stored prediction",
            "Sets `true_class` (0, 1, false or true; booleans are stored as 0/1). Setting it again replaces it.",
            "The updated prediction",
            PREDICTION_RECORD,
            problems=(*BODY_PROBLEMS, UNKNOWN_PREDICTION, VALIDATION, STORE_UNAVAILABLE),
            request=shapes.update,
            needs_key=True,
        ),
        Operation(
            "listPredictions", "GET", "/predictions",
            "List stored predictions, newest first",
            "Pass `next_cursor` back as `cursor` for the next page; it is null on the last page.",
            "One page of predictions",
            PREDICTION_PAGE,
            problems=(VALIDATION, STORE_UNAVAILABLE),
            parameters=(LIMIT, CURSOR),
            needs_key=True,
        ),
        Operation(
            "getPrediction", "GET", "/predictions/{id}",
            "Get one stored prediction",
            "An optional minus sign and digits name an integer id (`/predictions/42` is id 42); anything "
            'else is a string id. To fetch a string id made of digits, wrap it in double quotes '
            '(`/predictions/%2242%22` is id "42"). Percent-encode `/`, `?`, `#` and `%` in ids. A path '
            "that cannot name an id (empty, out of range, control characters) is a 404 like any unknown id.",
            "The prediction",
            PREDICTION_RECORD,
            problems=(UNKNOWN_PREDICTION, STORE_UNAVAILABLE),
            parameters=(PATH_ID,),
            needs_key=True,
            route="/predictions/{prediction_id:path}",
        ),
        Operation(
            "listDbContents", "GET", "/list-db-contents",
            "The newest stored predictions as a plain list (kept for clients of the original app)",
            f"At most {MAX_LIST_LIMIT} predictions, newest first. Use GET /predictions to page through all.",
            "Predictions, newest first",
            Array(PREDICTION_RECORD, max_items=MAX_LIST_LIMIT),
            problems=(STORE_UNAVAILABLE,),
            needs_key=True,
        ),
        Operation(
            "health", "GET", "/health",
            "Is the service able to answer?",
            "200 when the model is loaded and the store answers; 503 (a problem) when the store does not.",
            "Healthy",
            HEALTH,
            problems=(STORE_UNAVAILABLE,),
        ),
        Operation(
            "model", "GET", "/model",
            "The model card: features, threshold, metrics, versions and hashes of the served artifact",
            "The artifact's manifest plus `model_version`, the `engine` serving it and `engine_reason` (why: for"
            " scikit-learn, the step that kept the fast form out and what would allow one).",
            "The model card",
            Documented({"type": "object", "required": ["model_version"]}),
        ),
        Operation(
            "stats", "GET", "/stats",
            "Live quality of the served predictions, per model version",
            "From the counters the store keeps with every prediction and outcome (their cost does not "
            "grow with the number of predictions): volume, the outcome figures (confusion matrix, "
            "accuracy, precision, recall, F1, ROC AUC, Brier score, log loss, calibration table) on the "
            "predictions whose true class was recorded, the ROC curve, drift of each feature against its "
            "training distribution (for the version being served) and a daily series. Days are UTC days "
            "of the predictions (an outcome counts on its prediction's day). A figure that cannot be "
            "computed yet (no outcome, one class only) is null. The version being served comes first.",
            "Quality per model version",
            STATS,
            problems=(VALIDATION, STORE_UNAVAILABLE),
            parameters=STATS_PARAMETERS,
            needs_key=True,
        ),
    )
    scrape = (
        Operation(
            "metrics", "GET", "/metrics",
            "Metrics in the Prometheus text format",
            "Counts added up over every worker process of this server, whichever one answers the scrape: "
            + "; ".join(f"`{METRIC_PREFIX}_{name}` ({kind}, by {', '.join(labels)}): {help_text}"
                        for name, kind, help_text, labels in METRIC_FAMILIES)
            + " For totals over every server and all time, see /stats. "
            + ("Needs the API key, like the outcomes it counts (Prometheus: `authorization: {credentials: "
               "<key>}` in the scrape config)." if auth_enabled else "Open: no API key is configured."),
            "Prometheus text exposition format 0.0.4",
            TEXT,
            media_type="text/plain",
            needs_key=True,
        ),
    )
    pages = (
        Operation(
            "dashboard", "GET", "/",
            "A dashboard of the live quality, for people",
            "An HTML page that draws /stats and /model: volume and accuracy per day, calibration, ROC "
            "curve, drift per feature and the model card. It loads only /dashboard.js and /dashboard.css "
            "from this server. When /stats needs the API key, the page asks for it and keeps it in the "
            "tab's sessionStorage; the page itself holds no key and no data.",
            "An HTML page",
            TEXT,
            media_type="text/html",
        ),
        Operation("dashboardScript", "GET", "/dashboard.js", "The dashboard's script",
                  "Plain JavaScript, no dependencies.", "JavaScript", TEXT, media_type="text/javascript"),
        Operation("dashboardStyle", "GET", "/dashboard.css", "The dashboard's style sheet", "CSS.", "CSS", TEXT,
                  media_type="text/css"),
        Operation("openapi", "GET", "/openapi.json", "This document", "OpenAPI 3.1.", "The OpenAPI document",
                  Documented({"type": "object"})),
        Operation("docs", "GET", "/docs", "This document as an HTML page",
                  "Self-contained: no scripts, nothing loaded from elsewhere.", "An HTML page", TEXT,
                  media_type="text/html"),
    )
    return predict_and_stats + (scrape if metrics else ()) + pages
