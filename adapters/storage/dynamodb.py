"""PredictionStore in a DynamoDB table, through pynamodb."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import PutError, PynamoDBException, TransactWriteError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from adapters.storage.codec import (
    bad_cursor,
    check_limit,
    cursor_time,
    decode_cursor,
    encode_cursor,
    utc_from_text,
    utc_text,
)
from core.errors import ConflictingPrediction, FieldError, InvalidRequest, StorageError, UnknownPrediction
from core.records import Page, PredictionId, PredictionRecord, canonical_json, id_from_key, id_key

CURSOR_KIND = "dynamodb"
# DynamoDB's TransactWriteItems limit: record_many refuses bigger batches.
MAX_BATCH = 100
INDEX_NAME = "newest_first"
# Ids are stored as their JSON text (`"a"`, `1`), so this key can never be an id's.
DAYS_KEY = "#days"
CONDITION_FAILED = "ConditionalCheckFailedException"
CHECK_FAILED = "ConditionalCheckFailed"  # the same, as a transaction's cancellation reason


class DynamoStore:
    """A PredictionStore in one DynamoDB table (on-demand billing), safe for many writers.

    Items: the key `pk` is `id_key(id)`, so 1 and "1" stay apart. `record` is a put conditioned
    on `attribute_not_exists(pk)`; when the condition fails, the stored item is read back
    (strongly consistent) and compared: same observation, it is returned unchanged; otherwise
    ConflictingPrediction. `set_outcome` is an update conditioned on `attribute_exists(pk)`.
    `record_many` is one TransactWriteItems of conditional puts, so at most 100 records
    (MAX_BATCH); exact retries found by a cancelled transaction are dropped and the rest retried.

    Newest-first listing without scanning the table: every prediction also carries `day`, the
    UTC date of `created_at` ("YYYY-MM-DD"), and `day_sort`, `created_at` ISO text + "#" + the
    sha256 of its key (unique, and short enough for a 1024-byte sort key whatever the id). The
    global secondary index `newest_first` (partition `day`, sort `day_sort`, all attributes
    projected) answers a page by querying one day at a time, newest first (ScanIndexForward=False)
    and going back until the page is full. Which days to query comes from one small item
    (`pk = "#days"`) holding the string set of every day that has predictions: a write adds its
    day to the set first (an idempotent `ADD`, skipped once this store object has added that day),
    so no stored prediction is ever missing from it, and listing never queries an empty day
    however sparse the history. The set costs about 13 bytes a day, so it stays far below the
    400 KB item limit for decades. The cursor is the `day_sort` of the last item returned.
    All predictions of one day share one index partition, which is fine up to about 1000 writes a
    second. The index is eventually consistent: a prediction can take a moment to show in `list`.

    Errors of botocore or pynamodb (unreachable endpoint, throttling, timeouts, missing table)
    become StorageError. Timeouts and retries are short so that an outage is reported in
    seconds: a refused connection at once, an endpoint that never answers after at most
    (1 + max_retries) * (connect or read timeout) plus botocore's backoff, about 9 s by default.
    """

    def __init__(
        self,
        table_name: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 2.0,
        max_retries: int = 2,
    ) -> None:
        if not table_name:
            raise ValueError("DynamoStore needs a table name")
        self.table_name = table_name
        self._items = _model_class(table_name, region, endpoint_url, connect_timeout, read_timeout, max_retries)
        self._lock = threading.Lock()
        # Days this object already added to the stored set (a set only grows).
        self._known_days: set[str] = set()

    def create_table(self, wait: bool = True) -> None:
        """Create the table and its index if missing; with `wait`, return once it is ACTIVE."""
        with self._translate("create table"):
            self._items.create_table(wait=wait, billing_mode="PAY_PER_REQUEST")

    def record(
        self, record: PredictionRecord, counters: Mapping[str, float] | None = None
    ) -> tuple[PredictionRecord, bool]:
        item = self._item(record)
        self._add_days([item.day])
        with self._translate("put"):
            try:
                item.save(condition=self._items.key.does_not_exist())
                return _record(item), True
            except PutError as e:
                if e.cause_response_code != CONDITION_FAILED:
                    raise
        stored = self.get(record.id, consistent=True)
        if not stored.same_request(record):
            raise ConflictingPrediction(record.id)
        return stored, False

    def record_many(
        self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]] | None = None
    ) -> list[tuple[PredictionRecord, bool]]:
        firsts: dict[str, PredictionRecord] = {}
        for record in records:
            first = firsts.setdefault(id_key(record.id), record)
            if not first.same_request(record):
                raise ConflictingPrediction(record.id)
        if len(firsts) > MAX_BATCH:
            raise InvalidRequest([FieldError("records", f"at most {MAX_BATCH} predictions in one batch")])
        if not firsts:
            return []
        pending = {key: self._item(record) for key, record in firsts.items()}
        self._add_days([item.day for item in pending.values()])
        existing: dict[str, PredictionRecord] = {}
        while pending:
            already = self._transact_put(list(pending.values()))
            if already is None:
                break
            for key in already:
                stored = self.get(id_from_key(key), consistent=True)
                if not stored.same_request(firsts[key]):
                    raise ConflictingPrediction(firsts[key].id)
                existing[key] = stored
                del pending[key]
        created = {key: _record(item) for key, item in pending.items()}
        results: list[tuple[PredictionRecord, bool]] = []
        seen: set[str] = set()
        for record in records:
            key = id_key(record.id)
            if key in created and key not in seen:
                results.append((created[key], True))
            else:
                results.append((existing[key] if key in existing else created[key], False))
            seen.add(key)
        return results

    def set_outcome(self, prediction_id: PredictionId, true_class: int, now: datetime) -> PredictionRecord:
        items = self._items
        item = items(id_key(prediction_id))
        with self._translate("update"):
            try:
                item.update(
                    actions=[items.true_class.set(int(true_class)), items.updated_at.set(utc_text(now))],
                    condition=items.key.exists(),
                )
            except UpdateError as e:
                if e.cause_response_code != CONDITION_FAILED:
                    raise
                raise UnknownPrediction(prediction_id) from None
        return _record(item)

    def get(self, prediction_id: PredictionId, consistent: bool = False) -> PredictionRecord:
        with self._translate("get"):
            try:
                item = self._items.get(id_key(prediction_id), consistent_read=consistent)
            except self._items.DoesNotExist:
                raise UnknownPrediction(prediction_id) from None
        return _record(item)

    def list(self, limit: int, cursor: str | None = None) -> Page:
        check_limit(limit)
        after = None if cursor is None else _decode_cursor(cursor)
        days = sorted(self._read_days(), reverse=True)
        if after is not None:
            days = [day for day in days if day <= after[:10]]
        index = self._items.newest_first
        found: list[Any] = []
        with self._translate("query"):
            for day in days:
                condition = self._items.day_sort < after if after and after[:10] == day else None
                found.extend(
                    index.query(
                        day,
                        range_key_condition=condition,
                        scan_index_forward=False,
                        limit=limit + 1 - len(found),
                    )
                )
                if len(found) > limit:
                    break
        page = found[:limit]
        next_cursor = encode_cursor(CURSOR_KIND, (page[-1].day_sort,)) if len(found) > limit else None
        return Page([_record(item) for item in page], next_cursor)

    def check(self) -> None:
        self._read_days()

    def _item(self, record: PredictionRecord) -> Any:
        key = id_key(record.id)
        created_at = utc_text(record.created_at)
        return self._items(
            key,
            observation=canonical_json(record.observation),
            proba=repr(float(record.proba)),
            predicted_class=bool(record.predicted_class),
            threshold=repr(float(record.threshold)),
            model_version=record.model_version,
            true_class=None if record.true_class is None else int(record.true_class),
            warnings=list(record.warnings),
            created_at=created_at,
            updated_at=utc_text(record.updated_at),
            day=created_at[:10],
            day_sort=created_at + "#" + hashlib.sha256(key.encode()).hexdigest(),
        )

    def _transact_put(self, items: Sequence[Any]) -> Sequence[str] | None:
        """Put all `items` if none exists; else write nothing and return the keys that exist."""
        condition = self._items.key.does_not_exist()
        with self._translate("transaction"):
            try:
                with TransactWrite(connection=self._items._get_connection().connection) as transaction:
                    for item in items:
                        transaction.save(item, condition=condition)
                return None
            except TransactWriteError as e:
                reasons = e.cancellation_reasons if e.cause_response_code == "TransactionCanceledException" else []
                failed = [item.key for item, reason in zip(items, reasons) if reason and reason.code == CHECK_FAILED]
                others = [reason for reason in reasons if reason and reason.code != CHECK_FAILED]
                if not failed or others:
                    raise
                return failed

    def _read_days(self) -> set[str]:
        with self._translate("get days"):
            try:
                item = self._items.get(DAYS_KEY, consistent_read=True)
            except self._items.DoesNotExist:
                return set()
        return set(item.days or ())

    def _add_days(self, days: Sequence[str]) -> None:
        with self._lock:
            new: set[str] = set(days) - self._known_days
        if not new:
            return
        with self._translate("add days"):
            self._items(DAYS_KEY).update(actions=[self._items.days.add(new)])
        with self._lock:
            self._known_days |= new

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        try:
            yield
        except (PynamoDBException, BotoCoreError, ClientError) as e:
            cause = getattr(e, "cause", None) or e
            raise StorageError(f"DynamoDB table {self.table_name!r}: {action} failed: {cause}") from e


def _model_class(
    table: str,
    aws_region: str | None,
    endpoint_url: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_retries: int,
) -> Any:
    """A fresh pynamodb Model class bound to one table, so stores on other tables can coexist."""

    class NewestFirst(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = INDEX_NAME
            projection = AllProjection()

        day = UnicodeAttribute(hash_key=True)
        day_sort = UnicodeAttribute(range_key=True)

    class PredictionItem(Model):
        class Meta:
            table_name = table
            region = aws_region
            host = endpoint_url
            billing_mode = "PAY_PER_REQUEST"
            connect_timeout_seconds = connect_timeout
            read_timeout_seconds = read_timeout
            max_retry_attempts = max_retries

        key = UnicodeAttribute(hash_key=True, attr_name="pk")
        observation = UnicodeAttribute()
        # Floats as repr text: exact, and DynamoDB numbers cannot go below 1e-130.
        proba = UnicodeAttribute()
        predicted_class = BooleanAttribute()
        threshold = UnicodeAttribute()
        model_version = UnicodeAttribute()
        true_class = NumberAttribute(null=True)
        warnings = ListAttribute(of=UnicodeAttribute)  # type: ignore[var-annotated]
        created_at = UnicodeAttribute()
        updated_at = UnicodeAttribute()
        day = UnicodeAttribute()
        day_sort = UnicodeAttribute()
        newest_first = NewestFirst()
        # Only on the DAYS_KEY item, which is only ever updated (never saved, so never
        # checked for the attributes above). One class means one botocore client per store.
        days = UnicodeSetAttribute(null=True)

    return PredictionItem


def _record(item: Any) -> PredictionRecord:
    return PredictionRecord(
        id=id_from_key(item.key),
        observation=json.loads(item.observation),
        proba=float(item.proba),
        predicted_class=bool(item.predicted_class),
        threshold=float(item.threshold),
        model_version=item.model_version,
        created_at=utc_from_text(item.created_at),
        updated_at=utc_from_text(item.updated_at),
        true_class=None if item.true_class is None else int(item.true_class),
        warnings=tuple(item.warnings or ()),
    )


def _decode_cursor(cursor: str) -> str:
    (day_sort,) = decode_cursor(CURSOR_KIND, cursor, (str,))
    created_at, _, digest = day_sort.partition("#")
    cursor_time(created_at)
    if len(digest) != 64:
        raise bad_cursor()
    return day_sort


def main(argv: list[str], environ: dict[str, str]) -> int:
    """`python -m adapters.storage.dynamodb create-table NAME`, for local development."""
    if len(argv) != 2 or argv[0] != "create-table":
        print("usage: python -m adapters.storage.dynamodb create-table TABLE_NAME", file=sys.stderr)
        return 2
    store = DynamoStore(
        argv[1],
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
        endpoint_url=environ.get("AWS_ENDPOINT_URL_DYNAMODB") or environ.get("AWS_ENDPOINT_URL"),
    )
    try:
        store.create_table(wait=True)
    except StorageError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"table {argv[1]!r} is ready")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], dict(os.environ)))
