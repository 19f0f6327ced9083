"""The OpenAPI 3.1 document of this API, and the same document as a self-contained HTML page.

Written by hand, from the model's schema and the settings, so that it is exact: the observation
schema is the model's features, batch and body limits are the configured ones, and the 401
responses and security requirements appear only when an API key is configured. Each operation
lists every status it can answer (tests/http checks the routes against the app's).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from adapters.http.body import MAX_DEPTH
from adapters.http.metrics import FAMILIES as METRIC_FAMILIES
from adapters.http.metrics import PREFIX as METRIC_PREFIX
from adapters.http.problems import (
    AUTH_CHALLENGE,
    CONFLICT,
    INTERNAL,
    MALFORMED,
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPES,
    STORE_UNAVAILABLE,
    TOO_LARGE,
    UNAUTHORIZED,
    UNKNOWN_PREDICTION,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    ProblemType,
)
from adapters.http.shapes import MAX_VERSION_LENGTH
from core.model import Model
from core.quality import CALIBRATION_BINS
from core.records import DEFAULT_MAX_STRING_LENGTH, MAX_ABS_INT_ID, MAX_EXTRA_KEYS, MAX_ID_LENGTH
from core.schema import MAX_ABS_NUMBER, Feature
from core.service import MAX_LIST_LIMIT

TITLE = "sklearn-serve"
JSON = "application/json"
TEXT = "text/plain"


def openapi_document(
    model: Model,
    *,
    max_batch: int,
    max_body_bytes: int,
    protected: Iterable[str],
    auth_enabled: bool,
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
    metrics: bool = True,
) -> dict[str, Any]:
    """The document; `protected` holds the operation ids that need the API key; `metrics`
    says whether /metrics is served."""
    protected = set(protected)
    body_problems = (MALFORMED, TOO_LARGE, UNSUPPORTED_MEDIA_TYPE)

    def operation(
        op_id: str,
        summary: str,
        description: str,
        ok: tuple[str, dict[str, Any]],
        problems: tuple[ProblemType, ...] = (),
        media_type: str = JSON,
        **extra: Any,
    ) -> dict[str, Any]:
        statuses = set(problems) | {INTERNAL}
        if op_id in protected:
            statuses.add(UNAUTHORIZED)
        responses: dict[str, Any] = {"200": {"description": ok[0], "content": {media_type: {"schema": ok[1]}}}}
        for status in sorted({p.status for p in statuses}):
            kinds = sorted((p for p in statuses if p.status == status), key=lambda p: p.name)
            response: dict[str, Any] = {
                "description": " / ".join(f"{p.title}: {p.meaning}" for p in kinds),
                "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
            if status == UNAUTHORIZED.status:
                response["headers"] = {
                    "WWW-Authenticate": {"schema": {"type": "string"}, "description": f"{AUTH_CHALLENGE} (a challenge)"}
                }
            responses[str(status)] = response
        op: dict[str, Any] = {
            "operationId": op_id,
            "summary": summary,
            "description": description,
            "parameters": [{"$ref": "#/components/parameters/RequestId"}, *extra.pop("parameters", [])],
            "responses": responses,
            **extra,
        }
        if op_id in protected and auth_enabled:
            op["security"] = [{"bearer": []}, {"apiKey": []}]
        return op

    def body(ref: str) -> dict[str, Any]:
        return {"required": True, "content": {JSON: {"schema": {"$ref": ref}}}}

    record = {"$ref": "#/components/schemas/PredictionRecord"}
    paths = {
        "/predict": {
            "post": operation(
                "predict",
                "Predict one observation or a batch, and record the answer",
                "Send `{id, observation}` for one prediction or `{observations: [{id, observation}, ...]}` for "
                f"up to {max_batch}. Every prediction is stored under its id. Sending the same id with the "
                "same observation again returns the stored prediction unchanged (safe retries); the same id "
                "with another observation is a 409. A batch is all or nothing: if any item is invalid, "
                "nothing is stored and the 422 names every bad field as `observations[<index>].<field>`. "
                "With `strict: true`, keys that are not features of the model are errors instead of warnings.",
                (
                    "The stored prediction (one) or predictions, in request order (batch)",
                    {"oneOf": [record, {"$ref": "#/components/schemas/PredictionBatch"}]},
                ),
                (*body_problems, CONFLICT, VALIDATION, STORE_UNAVAILABLE),
                requestBody=body("#/components/schemas/PredictRequest"),
            )
        },
        "/update": {
            "post": operation(
                "update",
                "Record the true class of a stored prediction",
                "Sets `true_class` (0, 1, false or true; booleans are stored as 0/1). Setting it again replaces it.",
                ("The updated prediction", record),
                (*body_problems, UNKNOWN_PREDICTION, VALIDATION, STORE_UNAVAILABLE),
                requestBody=body("#/components/schemas/UpdateRequest"),
            )
        },
        "/predictions": {
            "get": operation(
                "listPredictions",
                "List stored predictions, newest first",
                "Pass `next_cursor` back as `cursor` for the next page; it is null on the last page.",
                ("One page of predictions", {"$ref": "#/components/schemas/PredictionPage"}),
                (VALIDATION, STORE_UNAVAILABLE),
                parameters=[
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT, "default": 100},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "The opaque `next_cursor` of the previous page.",
                        "schema": {"type": "string"},
                    },
                ],
            )
        },
        "/predictions/{id}": {
            "get": operation(
                "getPrediction",
                "Get one stored prediction",
                "An optional minus sign and digits name an integer id (`/predictions/42` is id 42); anything "
                'else is a string id. To fetch a string id made of digits, wrap it in double quotes '
                '(`/predictions/%2242%22` is id "42"). Percent-encode `/`, `?`, `#` and `%` in ids. A path '
                "that cannot name an id (empty, out of range, control characters) is a 404 like any unknown id.",
                ("The prediction", record),
                (UNKNOWN_PREDICTION, STORE_UNAVAILABLE),
                parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            )
        },
        "/list-db-contents": {
            "get": operation(
                "listDbContents",
                "The newest stored predictions as a plain list (kept for clients of the original app)",
                f"At most {MAX_LIST_LIMIT} predictions, newest first. Use GET /predictions to page through all.",
                ("Predictions, newest first", {"type": "array", "items": record, "maxItems": MAX_LIST_LIMIT}),
                (STORE_UNAVAILABLE,),
            )
        },
        "/health": {
            "get": operation(
                "health",
                "Is the service able to answer?",
                "200 when the model is loaded and the store answers; 503 (a problem) when the store does not.",
                ("Healthy", {"$ref": "#/components/schemas/Health"}),
                (STORE_UNAVAILABLE,),
            )
        },
        "/model": {
            "get": operation(
                "model",
                "The model card: features, threshold, metrics, versions and hashes of the served artifact",
                "The artifact's manifest plus `model_version`, the `engine` serving it and `engine_reason` (why: for"
                " scikit-learn, the step that kept the fast form out and what would allow one).",
                ("The model card", {"type": "object", "required": ["model_version"]}),
            )
        },
        "/stats": {
            "get": operation(
                "stats",
                "Live quality of the served predictions, per model version",
                "From the counters the store keeps with every prediction and outcome (their cost does not "
                "grow with the number of predictions): volume, the outcome figures (confusion matrix, "
                "accuracy, precision, recall, F1, ROC AUC, Brier score, log loss, calibration table) on the "
                "predictions whose true class was recorded, the ROC curve, drift of each feature against its "
                "training distribution (for the version being served) and a daily series. Days are UTC days "
                "of the predictions (an outcome counts on its prediction's day). A figure that cannot be "
                "computed yet (no outcome, one class only) is null. The version being served comes first.",
                ("Quality per model version", {"$ref": "#/components/schemas/Stats"}),
                (VALIDATION, STORE_UNAVAILABLE),
                parameters=[
                    {
                        "name": "model_version",
                        "in": "query",
                        "required": False,
                        "description": "Only this version (see /model). Empty means every version.",
                        "schema": {"type": "string", "maxLength": MAX_VERSION_LENGTH, "pattern": "^[ -~]*$"},
                    },
                    *(
                        {
                            "name": name,
                            "in": "query",
                            "required": False,
                            "description": f"Only days {word} this UTC day (inclusive), written YYYY-MM-DD. "
                            "`since` after `until` is a 422.",
                            "schema": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                        }
                        for name, word in (("since", "from"), ("until", "up to"))
                    ),
                ],
            )
        },
        "/metrics": {
            "get": operation(
                "metrics",
                "Metrics in the Prometheus text format",
                "Counts added up over every worker process of this server, whichever one answers the scrape: "
                + "; ".join(f"`{METRIC_PREFIX}_{name}` ({kind}, by {', '.join(labels)}): {help_text}"
                            for name, kind, help_text, labels in METRIC_FAMILIES)
                + " For totals over every server and all time, see /stats. "
                + ("Needs the API key, like the outcomes it counts (Prometheus: `authorization: {credentials: "
                   "<key>}` in the scrape config)." if "metrics" in protected else "Open: no API key is configured."),
                ("Prometheus text exposition format 0.0.4", {"type": "string"}),
                media_type=TEXT,
            )
        },
        "/": {
            "get": operation(
                "dashboard",
                "A dashboard of the live quality, for people",
                "An HTML page that draws /stats and /model: volume and accuracy per day, calibration, ROC "
                "curve, drift per feature and the model card. It loads only /dashboard.js and /dashboard.css "
                "from this server. When /stats needs the API key, the page asks for it and keeps it in the "
                "tab's sessionStorage; the page itself holds no key and no data.",
                ("An HTML page", {"type": "string"}),
                media_type="text/html",
            )
        },
        "/dashboard.js": {
            "get": operation(
                "dashboardScript",
                "The dashboard's script",
                "Plain JavaScript, no dependencies.",
                ("JavaScript", {"type": "string"}),
                media_type="text/javascript",
            )
        },
        "/dashboard.css": {
            "get": operation(
                "dashboardStyle",
                "The dashboard's style sheet",
                "CSS.",
                ("CSS", {"type": "string"}),
                media_type="text/css",
            )
        },
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                "OpenAPI 3.1.",
                ("The OpenAPI document", {"type": "object"}),
            )
        },
        "/docs": {
            "get": operation(
                "docs",
                "This document as an HTML page",
                "Self-contained: no scripts, nothing loaded from elsewhere.",
                ("An HTML page", {"type": "string"}),
                media_type="text/html",
            )
        },
    }
    problem_list = "\n".join(f"- `{p.uri}` ({p.status}) {p.title}: {p.meaning}" for p in PROBLEM_TYPES)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": model.version[:12],
            "description": (
                "A scikit-learn classifier behind an API: every prediction is recorded with its id, and its "
                "true class can be added later.\n\n"
                f"Request bodies are JSON (UTF-8, at most {max_body_bytes} bytes, nested at most {MAX_DEPTH} "
                "levels, numbers finite and within the range of a 64-bit float). A request without "
                "Content-Type is read as JSON; any other media type, or a Content-Encoding other than "
                "identity, is a 415.\n\n"
                "Every response carries `X-Request-ID` (the request's own when it sent 1-200 printable ASCII "
                "characters, else a new one). Errors are RFC 9457 problem details "
                f"(`{PROBLEM_MEDIA_TYPE}`) with these types:\n\n{problem_list}"
            ),
        },
        "paths": paths if metrics else {path: item for path, item in paths.items() if path != "/metrics"},
        "components": {
            "parameters": {
                "RequestId": {
                    "name": "X-Request-ID",
                    "in": "header",
                    "required": False,
                    # Unconstrained on purpose: an invalid id is replaced, never refused.
                    "description": "Echoed in the response and the log when it is 1-200 printable ASCII "
                    "characters; otherwise replaced by a new id.",
                    "schema": {"type": "string"},
                }
            },
            "schemas": _schemas(model, max_batch, max_string_length),
        },
    }
    if auth_enabled:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    return document


def _feature_schema(feature: Feature, max_string_length: int) -> dict[str, Any]:
    kind = {"integer": "integer", "number": "number", "category": "string"}[feature.kind]
    schema: dict[str, Any] = {"type": [kind, "null"] if feature.nullable else kind}
    if feature.kind == "category":
        schema["maxLength"] = max_string_length
        schema["description"] = (
            f"Seen in training: {', '.join(feature.categories[:20])}{', …' if len(feature.categories) > 20 else ''}. "
            "Other values are accepted with a warning."
        )
        schema["examples"] = list(feature.categories[:3])
        return schema
    # The core refuses any number beyond MAX_ABS_NUMBER, whatever the feature's own bounds.
    schema["minimum"] = -MAX_ABS_NUMBER if feature.minimum is None else max(feature.minimum, -MAX_ABS_NUMBER)
    schema["maximum"] = MAX_ABS_NUMBER if feature.maximum is None else min(feature.maximum, MAX_ABS_NUMBER)
    if feature.seen_min is not None and feature.seen_max is not None:
        schema["description"] = (
            f"Training range {feature.seen_min} to {feature.seen_max}; values outside it get a warning."
        )
    return schema


def _schemas(model: Model, max_batch: int, max_string_length: int) -> dict[str, Any]:
    prediction_id = {
        "description": "Chosen by the client; 1 and \"1\" are different ids.",
        "oneOf": [
            {"type": "integer", "minimum": -MAX_ABS_INT_ID, "maximum": MAX_ABS_INT_ID},
            {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": "^[^\\u0000-\\u001f\\u007f]+$"},
        ],
    }
    observation = {
        "type": "object",
        "description": "One row of features. Keys that are not features are ignored with a warning "
        f"(errors with strict: true): at most {MAX_EXTRA_KEYS} of them, with scalar values. Every string, "
        f"keys included, is at most {max_string_length} characters (MAX_STRING_LENGTH).",
        "properties": {f.name: _feature_schema(f, max_string_length) for f in model.schema.features},
        "required": model.schema.names,
        "maxProperties": len(model.schema.features) + MAX_EXTRA_KEYS,
        "propertyNames": {"maxLength": max_string_length},
        "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": max_string_length},
    }
    strict_observation = {
        **observation,
        "description": "One row of features, and nothing else (the observation of a strict: true request).",
        "additionalProperties": False,
    }
    strict = {"type": "boolean", "default": False, "description": "Unknown observation keys are errors."}
    ref = "#/components/schemas/"
    when_strict = {"properties": {"strict": {"const": True}}, "required": ["strict"]}
    return {
        "PredictionId": prediction_id,
        "Observation": observation,
        "StrictObservation": strict_observation,
        "SinglePredictRequest": {
            "type": "object",
            "properties": {"id": {"$ref": ref + "PredictionId"}, "observation": {"$ref": ref + "Observation"},
                           "strict": strict},
            "required": ["id", "observation"],
            "additionalProperties": False,
            "if": when_strict,
            "then": {"properties": {"observation": {"$ref": ref + "StrictObservation"}}},
        },
        "BatchPredictRequest": {
            "type": "object",
            "properties": {
                "observations": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_batch,
                    "items": {
                        "type": "object",
                        "properties": {"id": {"$ref": ref + "PredictionId"},
                                       "observation": {"$ref": ref + "Observation"}},
                        "required": ["id", "observation"],
                        "additionalProperties": False,
                    },
                },
                "strict": strict,
            },
            "required": ["observations"],
            "additionalProperties": False,
            "if": when_strict,
            "then": {
                "properties": {
                    "observations": {"items": {"properties": {"observation": {"$ref": ref + "StrictObservation"}}}}
                }
            },
        },
        "PredictRequest": {"oneOf": [{"$ref": ref + "SinglePredictRequest"}, {"$ref": ref + "BatchPredictRequest"}]},
        "UpdateRequest": {
            "type": "object",
            "properties": {"id": {"$ref": ref + "PredictionId"}, "true_class": {"enum": [0, 1, False, True]}},
            "required": ["id", "true_class"],
            "additionalProperties": False,
        },
        "PredictionRecord": {
            "type": "object",
            "properties": {
                "id": {"$ref": ref + "PredictionId"},
                "observation_id": {"$ref": ref + "PredictionId", "description": "The same as id (older clients)."},
                "observation": {"type": "object"},
                "proba": {"type": "number", "minimum": 0, "maximum": 1,
                          "description": "Probability of the positive class."},
                "predicted_class": {"type": "boolean", "description": "proba >= threshold"},
                "threshold": {"type": "number"},
                "model_version": {"type": "string", "description": "sha256 of the model file."},
                "true_class": {"enum": [0, 1, None], "description": "null until POST /update."},
                "warnings": {"type": "array", "items": {"type": "string"}},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
            "required": ["id", "observation_id", "observation", "proba", "predicted_class", "threshold",
                         "model_version", "true_class", "warnings", "created_at", "updated_at"],
        },
        "PredictionBatch": {
            "type": "object",
            "properties": {"predictions": {"type": "array", "items": {"$ref": ref + "PredictionRecord"}}},
            "required": ["predictions"],
        },
        "PredictionPage": {
            "type": "object",
            "properties": {
                "predictions": {"type": "array", "items": {"$ref": ref + "PredictionRecord"}},
                "next_cursor": {"type": ["string", "null"]},
            },
            "required": ["predictions", "next_cursor"],
        },
        "Health": {
            "type": "object",
            "properties": {"status": {"const": "ok"}, "model_version": {"type": "string"}, "store": {"const": "ok"}},
            "required": ["status", "model_version", "store"],
        },
        **_stats_schemas(),
        "FieldError": {
            "type": "object",
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            "required": ["field", "message"],
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details.",
            "properties": {
                "type": {"type": "string", "format": "uri", "enum": [p.uri for p in PROBLEM_TYPES]},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "request_id": {"type": "string"},
                "errors": {"type": "array", "items": {"$ref": ref + "FieldError"},
                           "description": "Validation problems: every bad field."},
                "id": {"type": ["integer", "string"], "description": "The unknown or conflicting id, as sent."},
                "max_body_bytes": {"type": "integer"},
            },
            "required": ["type", "title", "status", "detail"],
        },
    }


def _stats_schemas() -> dict[str, Any]:
    """The shape of GET /stats (core.service.PredictionService.stats, core.quality.summarise)."""
    ref = "#/components/schemas/"
    # Ratios of counts are within [0, 1]; means of summed floats are not bounded here, because a
    # replaced outcome is subtracted from float sums and may leave a rounding error below zero.
    ratio = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
    mean = {"type": ["number", "null"]}
    share = {"type": "number", "minimum": 0, "maximum": 1}
    count = {"type": "integer", "minimum": 0}
    day = {"type": "string", "format": "date"}
    interval = {"type": ["array", "null"], "items": {"type": "number"}, "minItems": 2, "maxItems": 2}

    def obj(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "properties": properties, "required": list(properties),
                                  "additionalProperties": False}
        if description:
            schema["description"] = description
        return schema

    return {
        "Stats": obj({
            "model_version": {"type": "string", "description": "The version this server serves."},
            "since": {"type": ["string", "null"], "format": "date"},
            "until": {"type": ["string", "null"], "format": "date"},
            "thresholds": obj({"psi_alert": {"type": "number"}, "unseen_alert": {"type": "number"}},
                              "Drift is flagged above these: PSI, and the share of unseen categories."),
            "versions": {"type": "array", "items": {"$ref": ref + "VersionStats"}},
            "comparison": {"type": "array", "items": {"$ref": ref + "Comparison"},
                           "description": "Each challenger (SHADOW_MODEL_DIRS) against each champion whose "
                                          "traffic it scored, the version served first, on the records labelled "
                                          "and scored by both; differences are challenger minus champion."},
        }),
        "Comparison": obj({
            "challenger": {"type": "string"},
            "champion": {"type": "string"},
            "records": count,
            "positives": count,
            "negatives": count,
            "roc_auc": obj({"champion": ratio, "challenger": ratio, "difference": mean, "ci95": interval,
                            "p_value": ratio}, "DeLong's test for two correlated ROC curves."),
            "accuracy": obj({"champion": ratio, "challenger": ratio, "difference": mean,
                             "only_champion_right": count, "only_challenger_right": count,
                             "mcnemar_p_value": ratio}, "McNemar's test on the records only one model got right."),
            "brier_score": obj({"champion": mean, "challenger": mean, "difference": mean, "ci95": interval}),
            "log_loss": obj({"champion": mean, "challenger": mean, "difference": mean, "ci95": interval}),
            "challenger_better": {"type": "boolean",
                                  "description": "The challenger's ROC AUC is higher, with p < 0.05."},
        }),
        "VersionStats": obj({
            "model_version": {"type": "string"},
            "role": {"enum": ["champion", "challenger"],
                     "description": "champion: the predictions it answered; challenger: its scores of the "
                                    "traffic of the versions in `shadowing`."},
            "serving": {"type": "boolean", "description": "This is the version this server serves."},
            "shadowing": {"type": "array", "items": {"type": "string"}},
            "predictions": count,
            "predicted_positive": count,
            "mean_proba_served": mean,
            "outcomes": {"$ref": ref + "OutcomeStats"},
            "roc_curve": {"type": "array", "items": obj({"threshold": share, "fpr": share, "tpr": share}),
                          "description": "From (0, 0) at threshold 1 down; empty until both classes have outcomes."},
            "drift": {"type": "array", "items": {"$ref": ref + "FeatureDrift"},
                      "description": "Per feature; empty for versions other than the one served."},
            "daily": {"type": "array", "items": obj({"day": day, "predictions": count, "outcomes": count,
                                                     "accuracy": ratio})},
        }),
        "OutcomeStats": obj({
            "labeled": {**count, "description": "Predictions whose true class was recorded."},
            "confusion_matrix": obj({"tn": count, "fp": count, "fn": count, "tp": count}),
            "accuracy": ratio,
            "precision": ratio,
            "recall": ratio,
            "f1": ratio,
            "roc_auc": ratio,
            "brier_score": mean,
            "log_loss": mean,
            "base_rate": {**ratio, "description": "Share of positives among the recorded outcomes."},
            "mean_proba": {**mean, "description": "Mean predicted probability of the labeled predictions."},
            "calibration": {
                "type": "array",
                "minItems": CALIBRATION_BINS,
                "maxItems": CALIBRATION_BINS,
                "items": obj({
                    "bin": {"type": "array", "items": share, "minItems": 2, "maxItems": 2},
                    "count": count,
                    "mean_proba": mean,
                    "observed_rate": ratio,
                }),
            },
        }, "Figures on the predictions whose true class is known, at each prediction's threshold."),
        "FeatureDrift": obj({
            "feature": {"type": "string"},
            "kind": {"enum": ["integer", "number", "category"]},
            "psi": {"type": ["number", "null"],
                    "description": "Population stability index, served against training; null before any prediction."},
            "null_share": obj({"training": share, "served": share}),
            "unseen_share": {**ratio, "description": "Share of categories never seen in training (categories only)."},
            "buckets": {"type": "array", "items": obj({"bucket": {"type": "string"}, "training": share,
                                                        "served": share})},
            "flagged": {"type": "boolean"},
            "flags": {"type": "array", "items": {"type": "string"}},
        }),
    }


def render_html(document: dict[str, Any]) -> str:
    """The document as one HTML page: no scripts and nothing fetched, so it works offline."""
    e = html.escape
    info = document["info"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{e(info['title'])} API</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "pre{background:#f4f4f4;padding:.6rem;overflow:auto;font-size:13px}"
        "h2{border-top:1px solid #ccc;padding-top:1rem}code{background:#f4f4f4}"
        ".m{font-weight:bold;text-transform:uppercase;margin-right:.5rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;"
        "vertical-align:top}</style></head><body>",
        f"<h1>{e(info['title'])} API <small>model {e(info['version'])}</small></h1>",
        *(f"<p>{e(p)}</p>" for p in info["description"].split("\n\n")),
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>',
    ]
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            parts.append(f'<h2 id="{e(op["operationId"])}"><span class=m>{e(method)}</span><code>{e(path)}</code></h2>')
            parts.append(f"<p><b>{e(op['summary'])}</b></p><p>{e(op['description'])}</p>")
            if op.get("security"):
                parts.append("<p>Needs the API key: <code>Authorization: Bearer &lt;key&gt;</code> or "
                             "<code>X-API-Key: &lt;key&gt;</code>.</p>")
            params = [p for p in op.get("parameters", []) if "$ref" not in p]
            if params:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>")
                parts += [
                    f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
                    f"<td><code>{e(json.dumps(p['schema']))}</code>{' ' + e(p.get('description', ''))}</td></tr>"
                    for p in params
                ]
                parts.append("</table>")
            if "requestBody" in op:
                parts.append(f"<p>Request body:</p><pre>{e(_pretty(op['requestBody'], document))}</pre>")
            parts.append("<table><tr><th>status</th><th>meaning</th></tr>")
            parts += [
                f"<tr><td>{e(status)}</td><td>{e(response['description'])}</td></tr>"
                for status, response in op["responses"].items()
            ]
            parts.append("</table>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        parts.append(f'<h3 id="{e(name)}">{e(name)}</h3><pre>{e(json.dumps(schema, indent=2))}</pre>')
    parts.append("</body></html>")
    return "\n".join(parts)


def _pretty(request_body: dict[str, Any], document: dict[str, Any]) -> str:
    ref = request_body["content"][JSON]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[-1]
    return f"{name}: " + json.dumps(document["components"]["schemas"][name], indent=2)
