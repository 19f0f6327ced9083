"""The shapes of request bodies and parameters, checked before the service sees them.

The service checks ids, observations and outcomes; this module only checks the envelope around
them (which keys, which container types) and names bad fields the way the API documents them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from core.errors import FieldError, InvalidRequest, UnknownPrediction
from core.records import PredictionId, id_problem
from core.service import MAX_LIST_LIMIT, item_field_prefix

DEFAULT_LIST_LIMIT = 100
SINGLE_KEYS = ("id", "observation")
BATCH_ITEM_KEYS = ("id", "observation")
UPDATE_KEYS = ("id", "true_class")
_DIGITS = re.compile(r"-?[0-9]+")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_VERSION_LENGTH = 128


@dataclass(frozen=True)
class PredictCall:
    """A prediction request: its (id, observation) items, and whether it was a batch."""

    items: list[tuple[Any, Any]]
    strict: bool
    is_batch: bool


def predict_request(body: Any, max_batch: int) -> PredictCall:
    """`{"id", "observation"[, "strict"]}` or `{"observations": [{"id", "observation"}, ...][, "strict"]}`."""
    if not isinstance(body, dict):
        raise InvalidRequest([FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    strict = body.get("strict", False)
    if not isinstance(strict, bool):
        errors.append(FieldError("strict", "must be true or false"))
    if "observations" not in body:
        errors += _envelope(body, "", SINGLE_KEYS, optional=("strict",))
        if errors:
            raise InvalidRequest(errors)
        return PredictCall([(body["id"], body["observation"])], strict, is_batch=False)
    errors += _envelope(body, "", ("observations",), optional=("strict",))
    items = body["observations"]
    if not isinstance(items, list):
        errors.append(FieldError("observations", "must be an array of {id, observation} objects"))
    elif not 1 <= len(items) <= max_batch:
        errors.append(FieldError("observations", f"must hold from 1 to {max_batch} items, not {len(items)}"))
    else:
        for index, item in enumerate(items):
            prefix = item_field_prefix(index)
            if isinstance(item, dict):
                errors += _envelope(item, prefix, BATCH_ITEM_KEYS)
            else:
                errors.append(FieldError(prefix.rstrip("."), "must be an object with id and observation"))
    if errors:
        raise InvalidRequest(errors)
    return PredictCall([(item["id"], item["observation"]) for item in items], strict, is_batch=True)


def update_request(body: Any) -> tuple[Any, Any]:
    """`{"id": ..., "true_class": 0 | 1 | true | false}` as (id, true_class), values unchecked."""
    if not isinstance(body, dict):
        raise InvalidRequest([FieldError("body", "must be a JSON object")])
    errors = _envelope(body, "", UPDATE_KEYS)
    if errors:
        raise InvalidRequest(errors)
    return body["id"], body["true_class"]


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


def _envelope(
    body: dict[str, Any], prefix: str, required: Sequence[str], optional: Sequence[str] = ()
) -> list[FieldError]:
    errors = [FieldError(prefix + key, "is required") for key in required if key not in body]
    allowed = (*required, *optional)
    errors += [
        FieldError(prefix + str(key), f"is not a field of this request (expected {', '.join(allowed)})")
        for key in body
        if key not in allowed
    ]
    return errors
