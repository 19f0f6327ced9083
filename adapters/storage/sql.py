"""What the SQL backends (SQLite, PostgreSQL) share: the aggregate queries and how their rows read.

Both keep `aggregates (model_version, day, name, value)` and `aggregate_totals (model_version,
name, value)`; they differ in the parameter mark and in how a day is sent (a `Dialect`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from operator import itemgetter
from typing import Any

from adapters.storage.codec import check_limit, cursor_time, decode_cursor, encode_cursor, utc_text
from core.ports import AggregateRow
from core.records import Page, PredictionRecord

Query = tuple[str, list[Any]]
Row = tuple[Any, ...]
# The columns of table `predictions` that make a record, in the order both backends read them.
COLUMNS = (
    "id_key, observation, proba, predicted_class, threshold, model_version, true_class, warnings,"
    " created_at, updated_at, shadows"
)
RECORD_COLUMNS = 11


@dataclass(frozen=True)
class Dialect:
    mark: str  # the parameter placeholder: "?" or "%s"
    day: Callable[[date], Any]  # a day as the driver sends it: ISO text or a date


def aggregate_filters(dialect: Dialect, model_version: str | None, since: date | None, until: date | None) -> Query:
    """SQL conditions (joined by AND) on an aggregate table's version and day columns, and their parameters."""
    where, params = ["value != 0"], []
    for condition, value in (("model_version =", model_version), ("day >=", since), ("day <=", until)):
        if value is not None:
            where.append(f"{condition} {dialect.mark}")
            params.append(value if isinstance(value, str) else dialect.day(value))
    return " AND ".join(where), params


def aggregates_query(
    dialect: Dialect,
    model_version: str | None,
    since: date | None,
    until: date | None,
    names: Collection[str] | None,
    table: str = "aggregates",
) -> Query:
    """The day rows asked for, ordered by (version, day): read them with `aggregate_rows`."""
    where, params = aggregate_filters(dialect, model_version, since, until)
    if names is not None:
        wanted = sorted(set(names))
        where += f" AND name IN ({', '.join([dialect.mark] * len(wanted))})" if wanted else " AND FALSE"
        params.extend(wanted)
    return f"SELECT model_version, day, name, value FROM {table} WHERE {where} ORDER BY model_version, day", params


def totals_query(
    dialect: Dialect, model_version: str | None, since: date | None, until: date | None, day_range_hint: str = ""
) -> Query:
    """Each version's counters over the days asked for: the running totals when that is all days,
    else summed over the day rows (a cost that follows the days in the range). Read with `totals`."""
    where, params = aggregate_filters(dialect, model_version, since, until)
    if since is None and until is None:
        return f"SELECT model_version, name, value FROM aggregate_totals WHERE {where}", params
    return (
        f"SELECT model_version, name, SUM(value) FROM aggregates WHERE {where}{day_range_hint}"
        " GROUP BY model_version, name HAVING SUM(value) != 0",
        params,
    )


def aggregate_rows(found: Iterable[tuple[str, Any, str, float]]) -> list[AggregateRow]:
    """Rows of `aggregates_query`, already filtered and in order: one AggregateRow per (version, day)."""
    return [
        AggregateRow(version, day if isinstance(day, str) else day.isoformat(), {n: v for _, _, n, v in group})
        for (version, day), group in groupby(found, key=itemgetter(0, 1))
    ]


def totals(found: Iterable[tuple[str, str, float]]) -> dict[str, dict[str, float]]:
    """Rows of `totals_query` as {version: counters}."""
    summed: dict[str, dict[str, float]] = {}
    for version, name, value in found:
        summed.setdefault(version, {})[name] = value
    return summed


def listing_query(dialect: Dialect, kind: str, limit: int, cursor: str | None, time_cast: str = "") -> Query:
    """A page of `predictions` newest first (ties by `seq`), one row more than `limit` to tell
    whether another page follows; `cursor` as `listing_page` wrote it. Rows are COLUMNS + seq."""
    check_limit(limit)
    where, params = "", []
    if cursor is not None:
        created_at, seq = decode_cursor(kind, cursor, (str, int))
        where, params = f"WHERE (created_at, seq) < ({dialect.mark}{time_cast}, {dialect.mark})", [
            cursor_time(created_at), seq
        ]
    query = f"SELECT {COLUMNS}, seq FROM predictions {where} ORDER BY created_at DESC, seq DESC LIMIT {dialect.mark}"
    return query, [*params, limit + 1]


def listing_page(rows: list[Row], limit: int, kind: str, record: Callable[[Row], PredictionRecord]) -> Page:
    """The Page of `listing_query`'s rows, with the cursor of its last record when more follow."""
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        created_at, seq = page[-1][8], page[-1][RECORD_COLUMNS]
        next_cursor = encode_cursor(kind, (created_at if isinstance(created_at, str) else utc_text(created_at), seq))
    return Page([record(row[:RECORD_COLUMNS]) for row in page], next_cursor)
