"""What every storage backend shares: UTC timestamps as sortable text, opaque cursors, aggregates."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from core import quality
from core.errors import FieldError, InvalidRequest
from core.ports import AggregateRow
from core.records import PredictionRecord

AggregateKey = tuple[str, str]  # (model_version, "YYYY-MM-DD")


def utc_text(moment: datetime) -> str:
    """`moment` as fixed-width ISO 8601 text in UTC, so that text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"stored datetimes must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utc_from_text(text: str) -> datetime:
    """The timezone-aware UTC datetime that `utc_text` wrote."""
    return datetime.fromisoformat(text).astimezone(UTC)


def utc(moment: datetime) -> datetime:
    """`moment` converted to UTC at the precision the stores keep (microseconds)."""
    return utc_from_text(utc_text(moment))


def utc_day(moment: datetime) -> str:
    """The UTC day of `moment` as "YYYY-MM-DD": the day part of an aggregate row's key."""
    return utc_text(moment)[:10]


def aggregate_key(record: PredictionRecord) -> AggregateKey:
    """The aggregate row a record's counters go to: its model version and UTC day."""
    return (record.model_version, utc_day(record.created_at))


def counters_per_record(
    records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float] | None] | None
) -> list[Mapping[str, float]]:
    """One (possibly empty) mapping per record; None stands for no counters at all."""
    if counters is None:
        return [{} for _ in records]
    if len(counters) != len(records):
        raise ValueError(f"got {len(counters)} counter mappings for {len(records)} records")
    return [c or {} for c in counters]


def in_days(day: str, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since.isoformat()) and (until is None or day <= until.isoformat())


def aggregate_rows(
    rows: Iterable[tuple[AggregateKey, Mapping[str, float]]],
    model_version: str | None,
    since: date | None,
    until: date | None,
    names: Collection[str] | None = None,
) -> list[AggregateRow]:
    """The rows a store returns: filtered, ordered by (version, day), zero counters left out."""
    wanted = None if names is None else set(names)
    selected = []
    for (version, day), counters in rows:
        if (model_version is None or version == model_version) and in_days(day, since, until):
            kept = {
                name: value for name, value in counters.items() if value != 0 and (wanted is None or name in wanted)
            }
            if kept:
                selected.append(AggregateRow(version, day, kept))
    return sorted(selected, key=lambda row: (row.model_version, row.day))


def counters_by_key(rows: Iterable[AggregateRow]) -> dict[AggregateKey, quality.Counters]:
    """`rows` as one mapping of counters per (version, day), rows of the same key added up."""
    fresh: dict[AggregateKey, quality.Counters] = {}
    for row in rows:
        quality.add(fresh.setdefault((row.model_version, row.day), {}), row.counters)
    return fresh


def summed_by_version(rows: Iterable[AggregateRow]) -> dict[str, dict[str, float]]:
    """`aggregate_totals` for stores that sum their day rows on every call (cost: versions × days)."""
    totals: dict[str, dict[str, float]] = {}
    for row in rows:
        quality.add(totals.setdefault(row.model_version, {}), row.counters)
    return {version: {k: v for k, v in counters.items() if v != 0} for version, counters in totals.items()}


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequest([FieldError("limit", "must be a positive integer")])
    return limit


def encode_cursor(kind: str, position: Sequence[str | int]) -> str:
    """An opaque page cursor: url-safe base64 of JSON naming the backend and a position."""
    text = json.dumps([kind, *position], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, shape: Sequence[type]) -> list[Any]:
    """The position `encode_cursor(kind, ...)` wrote, or InvalidRequest for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode())
    except (AttributeError, TypeError, UnicodeError, binascii.Error, ValueError):
        value = None
    if (
        isinstance(value, list)
        and len(value) == len(shape) + 1
        and value[0] == kind
        and all(type(v) is t for v, t in zip(value[1:], shape))
    ):
        return value[1:]
    raise bad_cursor()


def cursor_time(text: str) -> str:
    """`text` when it is a timestamp exactly as `utc_text` writes it, else InvalidRequest."""
    try:
        valid = utc_text(utc_from_text(text)) == text
    except ValueError:
        valid = False
    if not valid:
        raise bad_cursor()
    return text


def bad_cursor() -> InvalidRequest:
    return InvalidRequest([FieldError("cursor", "is not a cursor from a previous page of this list")])
