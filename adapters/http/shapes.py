"""The request contract: each body declared once, checked before the service sees it and
written into the OpenAPI document from the same declaration (adapters/http/contract.py).

The envelope (which keys, which container types) is checked here; ids, observations and
outcomes are checked by the service, and only documented here. Bad fields are named the way
the API documents them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters.http.contract import Array, Boolean, Documented, Either, Field, Object
from core.errors import FieldError, InvalidRequest, UnknownPrediction
from core.model import Model
from core.records import MAX_ABS_INT_ID, MAX_EXTRA_KEYS, MAX_ID_LENGTH, PredictionId, id_problem
from core.schema import MAX_ABS_NUMBER, Feature
from core.service import MAX_LIST_LIMIT, item_field

DEFAULT_LIST_LIMIT = 100
_DIGITS = re.compile(r"-?[0-9]+")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_VERSION_LENGTH = 128


@dataclass(frozen=True)
class PredictCall:
    """A prediction request: its (id, observation) items, and whether it was a batch."""

    items: list[tuple[Any, Any]]
    strict: bool
    is_batch: bool


PREDICTION_ID = Documented(
    {
        "description": "Chosen by the client; 1 and \"1\" are different ids.",
        "oneOf": [
            {"type": "integer", "minimum": -MAX_ABS_INT_ID, "maximum": MAX_ABS_INT_ID},
            {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": "^[^\\u0000-\\u001f\\u007f]+$"},
        ],
    },
    name="PredictionId",
)
STRICT = Boolean(False, "Unknown observation keys are errors.")


class RequestShapes:
    """The bodies of POST /predict and POST /update, for one model and the configured limits."""

    def __init__(self, predict: Either, update: Object) -> None:
        self.predict, self.update = predict, update

    @classmethod
    def of(cls, model: Model, max_batch: int, max_string_length: int) -> RequestShapes:
        observation = Documented(_observation_schema(model, max_string_length), name="Observation")
        strict_observation = Documented(
            {
                **observation.json_schema,
                "description": "One row of features, and nothing else (the observation of a strict: true request).",
                "additionalProperties": False,
            },
            name="StrictObservation",
        )
        # What strict: true means for the observation is the service's to check; the schema says it.
        when_strict = {"properties": {"strict": {"const": True}}, "required": ["strict"]}
        single = Object(
            {"id": Field(PREDICTION_ID), "observation": Field(observation), "strict": Field(STRICT, required=False)},
            name="SinglePredictRequest",
            also={"if": when_strict, "then": {"properties": {"observation": strict_observation.schema()}}},
            mentions=(strict_observation,),
        )
        item = Object({"id": Field(PREDICTION_ID), "observation": Field(observation)})
        batch = Object(
            {
                "observations": Field(Array(item, 1, max_batch, item_field)),
                "strict": Field(STRICT, required=False),
            },
            name="BatchPredictRequest",
            also={
                "if": when_strict,
                "then": {"properties": {"observations": {"items": {"properties": {
                    "observation": strict_observation.schema()}}}}},
            },
            mentions=(strict_observation,),
        )
        update = Object(
            {"id": Field(PREDICTION_ID), "true_class": Field(Documented({"enum": [0, 1, False, True]}))},
            name="UpdateRequest",
        )
        return cls(Either("observations", batch, single, name="PredictRequest"), update)

    def predict_call(self, body: Any) -> PredictCall:
        """`{"id", "observation"[, "strict"]}` or `{"observations": [{"id", "observation"}, ...][, "strict"]}`."""
        self.predict.check(body)
        strict = body.get("strict", False)
        if "observations" in body:
            return PredictCall([(item["id"], item["observation"]) for item in body["observations"]], strict, True)
        return PredictCall([(body["id"], body["observation"])], strict, is_batch=False)

    def update_call(self, body: Any) -> tuple[Any, Any]:
        """`{"id": ..., "true_class": ...}` as (id, true_class), values for the service to check."""
        self.update.check(body)
        return body["id"], body["true_class"]


def _observation_schema(model: Model, max_string_length: int) -> dict[str, Any]:
    """The model's features as JSON Schema: what core.schema accepts for an observation."""
    return {
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


PATH_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def path_id(raw: str) -> PredictionId:
    """The id in `/predictions/{id}`.

    An optional minus sign and digits name an integer id (`/predictions/42` is id 42); anything
    else is a string id. Wrap a string id in double quotes to fetch one made of digits
    (`/predictions/%2242%22` is id "42"). A path that cannot name any id (out of range, empty,
    control characters) is UnknownPrediction like any other id that is not stored.
    """
    value: PredictionId
    if _DIGITS.fullmatch(raw):
        sign, digits = ("-", raw[1:]) if raw.startswith("-") else ("", raw)
        digits = digits.lstrip("0") or "0"
        if len(digits) > 20:  # out of range anyway, and int() refuses very long digit strings
            raise UnknownPrediction(raw)
        value = int(sign + digits)
    elif len(raw) >= 2 and raw[0] == raw[-1] == '"':
        value = raw[1:-1]
    else:
        value = raw
    if id_problem(value):
        raise UnknownPrediction(value)
    return value


LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT, "default": DEFAULT_LIST_LIMIT},
}
CURSOR = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "description": "The opaque `next_cursor` of the previous page.",
    "schema": {"type": "string"},
}


def list_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIST_LIMIT
    if raw.isascii() and raw.isdigit() and len(raw) <= 7 and 1 <= int(raw) <= MAX_LIST_LIMIT:
        return int(raw)
    raise InvalidRequest([FieldError("limit", f"must be an integer from 1 to {MAX_LIST_LIMIT}")])


@dataclass(frozen=True)
class StatsQuery:
    model_version: str | None
    since: date | None
    until: date | None


STATS_PARAMETERS = (
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
)


def stats_query(params: Mapping[str, str]) -> StatsQuery:
    """`?model_version=&since=YYYY-MM-DD&until=YYYY-MM-DD`, each optional (an empty model_version too)."""
    errors: list[FieldError] = []
    version = params.get("model_version") or None
    if version is not None and not (len(version) <= MAX_VERSION_LENGTH and version.isascii() and version.isprintable()):
        errors.append(FieldError("model_version", f"must be at most {MAX_VERSION_LENGTH} printable ASCII characters"))
        version = None
    days: dict[str, date | None] = {}
    for name in ("since", "until"):
        raw = params.get(name)
        days[name] = None
        if raw is None:
            continue
        # fromisoformat alone would also take 20260101 and week dates; the API says YYYY-MM-DD.
        try:
            days[name] = date.fromisoformat(raw) if _DAY.fullmatch(raw) else None
        except ValueError:
            pass
        if days[name] is None:
            errors.append(FieldError(name, "must be a date written YYYY-MM-DD"))
    if errors:
        raise InvalidRequest(errors)
    return StatsQuery(version, days["since"], days["until"])

