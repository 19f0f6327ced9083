"""The response bodies, declared once for the OpenAPI document (adapters/http/contract.py).

The app makes them (core.records.PredictionRecord.as_json, core.quality.summarise,
adapters/http/problems.py); tests/http checks every answer against these schemas.
"""

from __future__ import annotations

from typing import Any

from adapters.http.contract import Array, Documented, Field, Object, Shape
from adapters.http.problems import PROBLEM_TYPES
from adapters.http.shapes import PREDICTION_ID
from core.quality import CALIBRATION_BINS


def _closed(fields: dict[str, Shape | dict[str, Any]], description: str | None = None,
            name: str | None = None) -> Object:
    """An object whose fields are all present and nothing else: the /stats report's."""
    return Object({key: Field(_shape(value)) for key, value in fields.items()}, name=name, description=description)


def _open(fields: dict[str, Shape | dict[str, Any]], name: str, required: tuple[str, ...] | None = None,
          description: str | None = None) -> Object:
    """An object with these fields (all required unless `required` says which), and possibly more."""
    return Object(
        {key: Field(_shape(value), required=required is None or key in required) for key, value in fields.items()},
        name=name, description=description, closed=False,
    )


def _shape(value: Shape | dict[str, Any]) -> Shape:
    return value if isinstance(value, Shape) else Documented(value)


PREDICTION_RECORD = _open(
    {
        "id": PREDICTION_ID,
        "observation_id": {"$ref": PREDICTION_ID.schema()["$ref"], "description": "The same as id (older clients)."},
        "observation": {"type": "object"},
        "proba": {"type": "number", "minimum": 0, "maximum": 1, "description": "Probability of the positive class."},
        "predicted_class": {"type": "boolean", "description": "proba >= threshold"},
        "threshold": {"type": "number"},
        "model_version": {"type": "string", "description": "sha256 of the model file."},
        "true_class": {"enum": [0, 1, None], "description": "null until POST /update."},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
    name="PredictionRecord",
)
PREDICTION_BATCH = _open({"predictions": Array(PREDICTION_RECORD)}, name="PredictionBatch")
PREDICTION_PAGE = _open(
    {"predictions": Array(PREDICTION_RECORD), "next_cursor": {"type": ["string", "null"]}}, name="PredictionPage"
)
HEALTH = _open(
    {"status": {"const": "ok"}, "model_version": {"type": "string"}, "store": {"const": "ok"}}, name="Health"
)
FIELD_ERROR = _open({"field": {"type": "string"}, "message": {"type": "string"}}, name="FieldError")
PROBLEM = _open(
    {
        "type": {"type": "string", "format": "uri", "enum": [p.uri for p in PROBLEM_TYPES]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": Array(FIELD_ERROR, description="Validation problems: every bad field."),
        "id": {"type": ["integer", "string"], "description": "The unknown or conflicting id, as sent."},
        "max_body_bytes": {"type": "integer"},
    },
    name="Problem",
    required=("type", "title", "status", "detail"),
    description="RFC 9457 problem details.",
)

# GET /stats (core.service.PredictionService.stats, core.quality.summarise). Ratios of counts
# are within [0, 1]; means of summed floats are not bounded here, because a replaced outcome is
# subtracted from float sums and may leave a rounding error below zero.
_RATIO = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_MEAN = {"type": ["number", "null"]}
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_COUNT = {"type": "integer", "minimum": 0}
_DAY = {"type": "string", "format": "date"}
_INTERVAL = {"type": ["array", "null"], "items": {"type": "number"}, "minItems": 2, "maxItems": 2}

COMPARISON = _closed({
    "challenger": {"type": "string"},
    "champion": {"type": "string"},
    "records": _COUNT,
    "positives": _COUNT,
    "negatives": _COUNT,
    "roc_auc": _closed({"champion": _RATIO, "challenger": _RATIO, "difference": _MEAN, "ci95": _INTERVAL,
                        "p_value": _RATIO}, "DeLong's test for two correlated ROC curves."),
    "accuracy": _closed({"champion": _RATIO, "challenger": _RATIO, "difference": _MEAN,
                         "only_champion_right": _COUNT, "only_challenger_right": _COUNT,
                         "mcnemar_p_value": _RATIO}, "McNemar's test on the records only one model got right."),
    "brier_score": _closed({"champion": _MEAN, "challenger": _MEAN, "difference": _MEAN, "ci95": _INTERVAL}),
    "log_loss": _closed({"champion": _MEAN, "challenger": _MEAN, "difference": _MEAN, "ci95": _INTERVAL}),
    "challenger_better": {"type": "boolean", "description": "The challenger's ROC AUC is higher, with p < 0.05."},
}, name="Comparison")
OUTCOME_STATS = _closed({
    "labeled": {**_COUNT, "description": "Predictions whose true class was recorded."},
    "confusion_matrix": _closed({"tn": _COUNT, "fp": _COUNT, "fn": _COUNT, "tp": _COUNT}),
    "accuracy": _RATIO,
    "precision": _RATIO,
    "recall": _RATIO,
    "f1": _RATIO,
    "roc_auc": _RATIO,
    "brier_score": _MEAN,
    "log_loss": _MEAN,
    "base_rate": {**_RATIO, "description": "Share of positives among the recorded outcomes."},
    "mean_proba": {**_MEAN, "description": "Mean predicted probability of the labeled predictions."},
    "calibration": Array(
        _closed({
            "bin": {"type": "array", "items": _SHARE, "minItems": 2, "maxItems": 2},
            "count": _COUNT,
            "mean_proba": _MEAN,
            "observed_rate": _RATIO,
        }),
        min_items=CALIBRATION_BINS,
        max_items=CALIBRATION_BINS,
    ),
}, "Figures on the predictions whose true class is known, at each prediction's threshold.", name="OutcomeStats")
FEATURE_DRIFT = _closed({
    "feature": {"type": "string"},
    "kind": {"enum": ["integer", "number", "category"]},
    "psi": {"type": ["number", "null"],
            "description": "Population stability index, served against training; null before any prediction."},
    "null_share": _closed({"training": _SHARE, "served": _SHARE}),
    "unseen_share": {**_RATIO, "description": "Share of categories never seen in training (categories only)."},
    "buckets": Array(_closed({"bucket": {"type": "string"}, "training": _SHARE, "served": _SHARE})),
    "flagged": {"type": "boolean"},
    "flags": {"type": "array", "items": {"type": "string"}},
}, name="FeatureDrift")
VERSION_STATS = _closed({
    "model_version": {"type": "string"},
    "role": {"enum": ["champion", "challenger"],
             "description": "champion: the predictions it answered; challenger: its scores of the "
                            "traffic of the versions in `shadowing`."},
    "serving": {"type": "boolean", "description": "This is the version this server serves."},
    "shadowing": {"type": "array", "items": {"type": "string"}},
    "predictions": _COUNT,
    "predicted_positive": _COUNT,
    "mean_proba_served": _MEAN,
    "outcomes": OUTCOME_STATS,
    "roc_curve": Array(_closed({"threshold": _SHARE, "fpr": _SHARE, "tpr": _SHARE}),
                       description="From (0, 0) at threshold 1 down; empty until both classes have outcomes."),
    "drift": Array(FEATURE_DRIFT, description="Per feature; empty for versions other than the one served."),
    "daily": Array(_closed({"day": _DAY, "predictions": _COUNT, "outcomes": _COUNT, "accuracy": _RATIO})),
}, name="VersionStats")
STATS = _closed({
    "model_version": {"type": "string", "description": "The version this server serves."},
    "since": {"type": ["string", "null"], "format": "date"},
    "until": {"type": ["string", "null"], "format": "date"},
    "thresholds": _closed({"psi_alert": {"type": "number"}, "unseen_alert": {"type": "number"}},
                          "Drift is flagged above these: PSI, and the share of unseen categories."),
    "versions": Array(VERSION_STATS),
    "comparison": Array(COMPARISON, description="Each challenger (SHADOW_MODEL_DIRS) against each champion whose "
                                                "traffic it scored, the version served first, on the records "
                                                "labelled and scored by both; differences are challenger minus "
                                                "champion."),
}, name="Stats")
