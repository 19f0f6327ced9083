"""Schemathesis hooks for test_fuzz.py, loaded by the schemathesis CLI (not by pytest).

`positive_data_acceptance` (ST202: "schema-valid request rejected") is switched off for three
operations in test_fuzz.py's config, because the schema cannot say what they refuse:

- GET /predictions: `cursor` is an opaque string that only a previous page hands out; a JSON
  Schema cannot say "a string this server made", so every made-up cursor counts as valid data.
- POST /predict: a batch that repeats an id with another observation is refused, as the
  description says a conflicting id is; a JSON Schema cannot relate two items of an array.
  (Extra observation keys under `strict: true` are no longer such a case: the document refuses
  them with an if/then on `strict`.)
- GET /stats: `since` after `until` is a 422, as its description says; a JSON Schema cannot
  compare two parameters.

This check puts back everything positive_data_acceptance would catch on those operations
except exactly those refusals: any other refusal of schema-valid data still fails the run.
"""

from __future__ import annotations

import json
import re
from typing import Any

import schemathesis

from core.records import canonical_json

# What positive_data_acceptance accepts as an answer to valid data (schemathesis's default).
ACCEPTABLE = {401, 403, 404, 409, 429}
# The operations whose positive_data_acceptance test_fuzz.py switches off, by label.
OPERATIONS = ("GET /predictions", "POST /predict", "GET /stats")


def _errors(response: Any) -> list[dict[str, str]] | None:
    try:
        errors = json.loads(response.content)["errors"]
    except (ValueError, KeyError, TypeError):
        return None
    return errors if isinstance(errors, list) else None


def _by_design(case: Any, response: Any) -> bool:
    errors = _errors(response) if response.status_code == 422 else None
    if not errors:
        return False
    label = case.operation.label
    if label == "GET /predictions":
        return [e.get("field") for e in errors] == ["cursor"] and bool((case.query or {}).get("cursor"))
    if label == "POST /predict":
        body = case.body if isinstance(case.body, dict) else {}
        return all(_repeats_an_id(body, e) for e in errors)
    if label == "GET /stats":
        query = case.query or {}
        since, until = str(query.get("since") or ""), str(query.get("until") or "")
        return errors == [{"field": "since", "message": "must not be after until"}] and since > until != ""
    return False


def _repeats_an_id(body: dict[str, Any], error: dict[str, str]) -> bool:
    """The error says batch item k repeats item j's id with another observation, and it does."""
    field = re.fullmatch(r"observations\[(\d+)\]\.id", error.get("field", ""))
    message = re.fullmatch(r"is repeated in this batch \(item (\d+)\) with a different observation",
                           error.get("message", ""))
    items = body.get("observations")
    if not field or not message or not isinstance(items, list):
        return False
    k, j = int(field.group(1)), int(message.group(1))
    if not j < k < len(items):
        return False
    first, later = items[j], items[k]
    # Observations compare as their JSON text, like stored retries: 1.0 and 1 are not the same request.
    different = canonical_json(first.get("observation")) != canonical_json(later.get("observation"))
    return bool(_same_id(first.get("id"), later.get("id")) and different)


def _same_id(a: Any, b: Any) -> bool:
    """Ids as the service compares them: 1 and 1.0 are one id, 1 and "1" are two."""
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


@schemathesis.check
def valid_data_is_accepted_but_for_what_the_schema_cannot_say(
    ctx: Any, response: Any, case: Any
) -> bool | None:
    meta = case.meta
    if case.operation.label not in OPERATIONS:
        return None
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in ACCEPTABLE:
        return None  # other checks judge these (not_a_server_error, status_code_conformance...)
    if _by_design(case, response):
        return None
    raise AssertionError(f"schema-valid request refused with {status}: {response.content[:300]!r}")
