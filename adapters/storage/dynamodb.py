"""PredictionStore in a DynamoDB table: records through pynamodb, transactions through its botocore client."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import sys
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any
from urllib.parse import urlsplit

import botocore.config
import botocore.session
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from adapters.storage.base import BadStoreUrl, Results, StoreBase, StoreOptions
from adapters.storage.codec import (
    AggregateKey,
    aggregate_key,
    aggregate_rows,
    bad_cursor,
    check_limit,
    counters_by_key,
    cursor_time,
    decode_cursor,
    encode_cursor,
    in_days,
    utc,
    utc_from_text,
    utc_text,
)
from core import quality
from core.errors import ConflictingPrediction, StorageError, UnknownPrediction
from core.ports import AggregateRow, OutcomeCounters
from core.records import (
    Page,
    PredictionId,
    PredictionRecord,
    canonical_json,
    id_from_key,
    id_key,
    shadows_from_json,
    shadows_json,
)

logger = logging.getLogger("sklearn_serve.storage")

CURSOR_KIND = "dynamodb"
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
# DynamoDB's TransactWriteItems limit (actions per transaction), core.ports.MAX_BATCH records.
MAX_ACTIONS = 100
INDEX_NAME = "newest_first"
# Ids are stored as their JSON text (`"a"`, `1`), so keys starting with "#" are never an id's.
DAYS_KEY = "#days"
AGGREGATE_INDEX_KEY = "#aggindex"
CHECK_KEY = "#check"
AGGREGATE_PREFIX = "#agg|"
# Attributes of aggregate items are the counters, each prefixed so that none can be `pk`.
COUNTER_PREFIX = "."
# On the AGGREGATE_INDEX_KEY item: `v:<version>` string sets of days, and PENDING.
VERSION_PREFIX = "v:"
PENDING = "pending"
# On a carrier record: its batch's counters until they are added to the aggregate items.
CARRIED = "agg_pending"
# A pending entry whose record does not exist is dropped after this long: the transaction that
# would have created the record was given up long before (it takes seconds, retries included).
PENDING_LEASE = timedelta(minutes=15)
# Counters one ADD may name: keeps an update expression far below DynamoDB's 4 KB.
MAX_TERMS = 100
# Counters one put of an aggregate item (replace_aggregates) may hold: far below 400 KB (counter
# names are short: a challenger's carry 16 characters of its version), and a repair spills no
# part of even a day with every challenger's histograms full.
MAX_PUT_TERMS = 3000
# Counters one carrier record may hold for its batch (about 40 bytes each).
MAX_CARRIED_TERMS = 3000
# The parts of one (version, day): core.quality's counter groups, so that no item grows big.
STANDARD_PARTS = quality.COUNTER_GROUPS
# Counter values: whole numbers exactly, other numbers rounded to 20 decimal places, so every
# sum of them is exact in DynamoDB's 38-digit decimals as long as it stays below 1e18.
SCALE = Decimal("1e-20")
MAX_COUNTER = Decimal("1e17")
TRANSACTION_ATTEMPTS = 8
OUTCOME_ATTEMPTS = 10
BATCH_ATTEMPTS = 8
CONDITION_FAILED = "ConditionalCheckFailedException"
CHECK_FAILED = "ConditionalCheckFailed"  # the same, as a transaction's cancellation reason
# Cancellation reasons worth trying again: another transaction on one of the items, throttling.
TRANSIENT = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})

Terms = dict[str, str]  # counter name -> DynamoDB number text


class DynamoStore(StoreBase):
    """A PredictionStore in one DynamoDB table (on-demand billing), safe for many writers.

    Records: the key `pk` is `id_key(id)`, so 1 and "1" stay apart. New records are written by
    one TransactWriteItems of puts conditioned on `attribute_not_exists(pk)` plus the `ADD`s of
    their counters (below); when a put's condition fails, nothing at all was written: the
    stored item is read back (strongly consistent) and compared: same observation, it is an
    exact retry returned unchanged, and the rest is tried again; otherwise ConflictingPrediction.
    At most 100 records per call (MAX_BATCH).

    Newest-first listing without scanning the table: every prediction also carries `day`, the
    UTC date of `created_at` ("YYYY-MM-DD"), and `day_sort`, `created_at` ISO text + "#" + the
    sha256 of its key (unique, and short enough for a 1024-byte sort key whatever the id). The
    global secondary index `newest_first` (partition `day`, sort `day_sort`, all attributes
    projected) answers a page by querying one day at a time, newest first (ScanIndexForward=False)
    and going back until the page is full. Which days to query comes from one small item
    (`pk = "#days"`) holding the string set of every day that has predictions: a write adds its
    day to the set in its own transaction, or before it when the transaction has no room (an
    idempotent `ADD`, skipped as told under "Registrations" below), so no stored prediction is
    ever missing from it, and listing never queries an empty day however
    sparse the history. The set costs about 13 bytes a day, so it stays far below the
    400 KB item limit for decades. The cursor is the `day_sort` of the last item returned.
    All predictions of one day share one index partition, which is fine up to about 1000 writes a
    second. The index is eventually consistent: a prediction can take a moment to show in `list`.

    Aggregates live in the same table, in items the listing never sees (they have no `day` or
    `day_sort`, so the index holds none of them) and `get` never reads (their keys start with
    "#"). The counters of one (version, day) are spread over a few items, `#agg|<day>|<part>|
    <version>`, one top-level number attribute `.<name>` per counter: part `m` for everything but
    the ROC histogram, `h0`..`h9` for its bins by hundreds, so that no item grows past a few KB
    (DynamoDB bills a write by the size of the whole item) and an outcome touches two of them.
    A write of more than MAX_TERMS counters to one part spills into `<part>.1`, `<part>.2`...
    Counters are added with `ADD` (atomic, creates what is missing). The item `#aggindex` lists
    in one string set per version (`v:<version>`) the days that have aggregates (and spilled
    parts as `<day>|<part>`); like `#days` it is only ever added to, by the write that needs it
    (in its transaction, or before it), so `aggregates` reads it and then BatchGetItems exactly
    the items that can exist: its cost depends on versions × days, never on the number of
    predictions (`aggregate_totals` sums them: a running total would be one more hot item in
    every write's transaction). With 13 bytes a day it holds some 30,000 (version, day) pairs before reaching
    the item limit.

    Registrations. This object remembers the days and index entries it added, and skips adding
    them again only when the write's own transaction checks that they are still there: the ADD to
    an aggregate item that could only have been created after them (`m` for the day and its
    entry, a spilled part for its own entry) is conditioned on that item existing. Once the table
    is deleted and created again (moto restarted, say), that condition fails: the object forgets
    all it remembered and writes again, adding everything. So a write of a known day is still one
    transaction, with no extra call or write unit (on moto, 200 such writes: 200 TransactWriteItems
    and nothing else, as before), and the first write after a re-creation costs one cancelled
    transaction more. A write without counters (the service always has some) or a big batch's
    first step adds to no such item, so it always adds its days and entries. The additions are
    two more updates (`#days`, `#aggindex`) in the write's own transaction when it has room for
    them (it has unless it nears 100 actions): a process's first write, a Lambda cold start's
    first event, is then one call instead of three. A batch of 100 records has no room and makes
    them first, with two UpdateItems.

    Atomicity. `set_outcome` reads the record, then runs one transaction: the update of the
    record conditioned on the outcome it read (`attribute_not_exists(true_class)` or
    `true_class = :old`), and the `ADD` of `outcome_increments(old, new)`; if another writer
    changed the outcome in between, the condition fails, nothing is written, and it starts again
    (OUTCOME_ATTEMPTS times at most). New records and their counters are one transaction whenever
    they fit: records + aggregate items <= 100 actions (an item may appear once, so the counters
    of a batch are summed per aggregate item first). A batch of 100 new records does not fit
    (101 actions), and splitting it would not be atomic. So such a batch is written in two
    steps that keep it all or nothing: (1) one transaction of the 100 conditional puts in which
    one record (the carrier) also holds the whole batch's summed counters in attribute
    `agg_pending`: the records and their counters are durable together, or nothing is; (2) one
    transaction that removes `agg_pending` from the carrier, conditioned on it still being
    there, and ADDs those counters to the aggregate items: applied exactly once, whoever runs it.
    Before (1) the carrier is added to the `pending` set of `#aggindex`, and `aggregates` first
    completes step (2) for every carrier listed there, so it never misses a batch even if its
    writer died between the two steps or lost the connection (then `record_many` still returns
    normally: the write is done). An entry whose record does not exist is dropped once it is
    older than PENDING_LEASE (its transaction failed); more than 99 aggregate items or 3000
    counters take several carriers.

    Numbers are DynamoDB decimals of at most 38 digits: counters are sent as whole numbers or
    rounded to 20 decimal places (|value| < 1e17), so sums are exact and stay representable. A
    transaction cancelled by a conflict with another transaction (every write of one version and
    day touches the same `m` item) or by throttling is retried with backoff, up to
    TRANSACTION_ATTEMPTS times. That hot item caps the write rate of one version at about 1000
    write units a second, i.e. a few hundred predictions a second. `aggregates` is not a
    snapshot: under concurrent writes it may see one part of a write and not yet another.
    `replace_aggregates` puts the new items and deletes the others with BatchWriteItem: it is
    meant for the repair command, with writes paused.

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
        self._region, self._endpoint_url = region, endpoint_url
        # As pynamodb configures its own client: no client-side validation, `max_retries` retries.
        self._client_config = botocore.config.Config(
            parameter_validation=False,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1 + max_retries, "mode": "standard"},
        )
        self._client_lock = threading.Lock()
        self._botocore_client: Any = None
        self._lock = threading.Lock()
        # The days, and (version, index entry) pairs, this object added to `#days` and `#aggindex`.
        self._known_days: set[str] = set()
        self._indexed: set[tuple[str, str]] = set()

    @property
    def client(self) -> Any:
        """This store's botocore client, for the calls pynamodb has no API for (transactions of
        conditional puts and ADDs, raw gets and batch writes of the aggregate items): the same
        endpoint, timeouts and retries as the pynamodb model's. Made on first use."""
        with self._client_lock:
            if self._botocore_client is None:
                self._botocore_client = botocore.session.get_session().create_client(
                    "dynamodb", region_name=self._region, endpoint_url=self._endpoint_url, config=self._client_config
                )
            return self._botocore_client

    def delete_table(self) -> None:
        """Delete the table and everything in it (tests, and tearing down a development table)."""
        with self._translate("delete table"):
            self._items.delete_table()

    def create_table(self, wait: bool = True) -> None:
        """Create the table and its index if missing; with `wait`, return once it is ACTIVE."""
        with self._translate("create table"):
            self._items.create_table(wait=wait, billing_mode="PAY_PER_REQUEST")

    def _record_new(self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]]) -> Results:
        firsts = {id_key(record.id): record for record in records}
        added = {id_key(record.id): record_counters for record, record_counters in zip(records, counters)}
        pending = {key: self._item(record) for key, record in firsts.items()}
        existing: dict[str, PredictionRecord] = {}
        while pending:
            already = self._put_new(pending, {key: added[key] for key in pending})
            if not already:
                break
            stored = self._get_many(already)
            for key in already:
                if not stored[key].same_request(firsts[key]):
                    raise ConflictingPrediction(firsts[key].id)
                existing[key] = stored[key]
                del pending[key]
        return [
            (existing[key], False) if key in existing else (_record(pending[key]), True) for key in firsts
        ]

    def set_outcome(
        self, prediction_id: PredictionId, true_class: int, now: datetime, counters: OutcomeCounters | None = None
    ) -> PredictionRecord:
        key = id_key(prediction_id)
        new = int(true_class)
        updated_at = utc_text(now)
        for _ in range(OUTCOME_ATTEMPTS):
            old = self.get(prediction_id, consistent=True)
            increments = counters(old, new) if counters else {}
            parts, entries = _split({aggregate_key(old): increments}, MAX_TERMS)
            # Room for the registrations: the record's update and the aggregate items take the rest.
            checked, registering = self._register(set(), entries, parts, MAX_ACTIONS - 1 - len(parts))
            values = {":new": {"N": str(new)}, ":now": {"S": updated_at}}
            if old.true_class is None:
                condition = "attribute_exists(pk) AND attribute_not_exists(#tc)"
            else:
                condition = "#tc = :old"
                values[":old"] = {"N": str(old.true_class)}
            update = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": {"S": key}},
                    "UpdateExpression": "SET #tc = :new, #ua = :now",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#tc": "true_class", "#ua": "updated_at"},
                    "ExpressionAttributeValues": values,
                }
            }
            adds = [self._add_action(pk, terms, pk in checked) for pk, terms in parts.items()]
            with self._translate("set outcome"):
                reasons = self._transact([update, *adds, *registering])
            if reasons is None:
                self._remember(set(), entries)
                return old.with_outcome(new, utc(now))
            if CHECK_FAILED in reasons[1:]:
                self._forget_registrations()
        raise StorageError(
            f"DynamoDB table {self.table_name!r}: the outcome of {prediction_id!r} was changed by other writers "
            f"{OUTCOME_ATTEMPTS} times while setting it; try again"
        )

    def aggregates(
        self,
        model_version: str | None = None,
        since: date | None = None,
        until: date | None = None,
        names: Collection[str] | None = None,
    ) -> list[AggregateRow]:
        index = self._read_index()
        if PENDING in index:
            self._complete_pending(index[PENDING]["SS"])
        # Only the items that can hold the counters asked for (/stats' daily series: one a day).
        groups = None if names is None else {quality.counter_group(name) for name in names}
        wanted = _indexed_items(index, model_version, since, until, groups)
        totals: dict[AggregateKey, dict[str, Decimal]] = {}
        for item in self._batch_get(list(wanted)):
            counters = totals.setdefault(wanted[item["pk"]["S"]], {})
            for name, value in item.items():
                if name.startswith(COUNTER_PREFIX) and "N" in value:
                    counter = name[len(COUNTER_PREFIX):]
                    counters[counter] = counters.get(counter, Decimal(0)) + Decimal(value["N"])
        return aggregate_rows(
            ((key, {name: _plain(total) for name, total in counters.items()}) for key, counters in totals.items()),
            None,
            None,
            None,
            names,
        )

    def replace_aggregates(self, rows: Sequence[AggregateRow]) -> None:
        fresh = counters_by_key(rows)
        parts, entries = _split(fresh, MAX_PUT_TERMS)
        index = self._read_index()
        # The new rows are a recomputation over the records, carriers included.
        for entry in index.get(PENDING, {}).get("SS", []):
            self._drop_carried(entry)
        self._add_index_entries(entries)
        old = _indexed_items(index, None, None, None)
        puts = [
            {"PutRequest": {"Item": {"pk": {"S": pk}, **{COUNTER_PREFIX + n: {"N": t} for n, t in terms.items()}}}}
            for pk, terms in parts.items()
        ]
        deletes = [{"DeleteRequest": {"Key": {"pk": {"S": pk}}}} for pk in sorted(set(old) - set(parts))]
        self._batch_write(puts + deletes)

    def _get_many(self, keys: Sequence[str]) -> dict[str, PredictionRecord]:
        """The stored records of `keys` (strongly consistent), which a failed condition showed exist."""
        with self._translate("batch get"):
            found = {item.key: _record(item) for item in self._items.batch_get(keys, consistent_read=True)}
        if set(keys) - set(found):
            raise StorageError(f"DynamoDB table {self.table_name!r}: records vanished while being read back")
        return found

    def get(self, prediction_id: PredictionId, consistent: bool = False) -> PredictionRecord:
        # Through this store's client, as every single-item call: one client to configure and watch.
        with self._translate("get"):
            found = self.client.get_item(
                TableName=self.table_name, Key={"pk": {"S": id_key(prediction_id)}}, ConsistentRead=consistent
            ).get("Item")
        if found is None:
            raise UnknownPrediction(prediction_id)
        return _record(self._items.from_raw_data(found))

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
        """A write of an item of its own (`#check`, a counter of checks), so that a table this
        role may read but not write fails the check like an unreachable one. Its key is not an
        id's and it has no `day`, so no listing or aggregate ever sees it."""
        with self._translate("check"):
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": CHECK_KEY}},
                UpdateExpression="ADD checks :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

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
            shadows=shadows_json(record.shadows) if record.shadows else None,
        )

    def _put_new(
        self, items: Mapping[str, Any], counters: Mapping[str, Mapping[str, float]], trust_memory: bool = True
    ) -> Sequence[str]:
        """Store all `items` with their counters, or nothing and return the keys already stored."""
        rows: dict[AggregateKey, quality.Counters] = {}
        for key, item in items.items():
            if counters[key]:
                quality.add(rows.setdefault((item.model_version, item.day), {}), counters[key])
        parts, entries = _split(rows, MAX_TERMS)
        keys = list(items)
        puts = {key: item.serialize() for key, item in items.items()}
        carried: dict[str, tuple[str, list[tuple[str, Terms]]]] = {}
        in_one_transaction = len(puts) + len(parts) <= MAX_ACTIONS
        days = {item.day for item in items.values()}
        # A big batch's first step adds to no aggregate item, so nothing in it can check what is
        # skipped, and it has no room for the registrations: they are made before it.
        checked, registering = self._register(
            days,
            entries,
            parts if in_one_transaction and trust_memory else {},
            MAX_ACTIONS - len(puts) - len(parts) if in_one_transaction else 0,
        )
        if in_one_transaction:
            adds = [self._add_action(pk, terms, pk in checked) for pk, terms in parts.items()]
        else:
            adds = []
            stamp = utc_text(datetime.now(UTC))
            for key, group in zip(keys, _carrier_groups(parts, len(keys))):
                carried[key] = (f"{stamp}|{key}", group)
                puts[key][CARRIED] = {"S": json.dumps(group, separators=(",", ":"))}
            with self._translate("add pending"):
                self._update_index("ADD", {PENDING: {entry for entry, _ in carried.values()}})
        condition = "attribute_not_exists(pk)"
        actions = [
            {"Put": {"TableName": self.table_name, "Item": puts[key], "ConditionExpression": condition}}
            for key in keys
        ]
        with self._translate("transaction"):
            reasons = self._transact([*actions, *adds, *registering])
        if reasons is None:
            self._remember(days, entries)
            for key, (entry, group) in carried.items():
                try:
                    self._apply_carried(key, group, entry)
                except StorageError as e:
                    logger.warning("counters of a stored batch left pending on %s (added on next read): %s", key, e)
            return []
        if carried:
            # Cancelled: not one record was written, so no carrier exists.
            with self._translate("remove pending"):
                self._update_index("DELETE", {PENDING: {entry for entry, _ in carried.values()}})
        if CHECK_FAILED in reasons[len(keys) :]:
            # An aggregate item that this object's memory says exists does not: the table is new.
            self._forget_registrations()
            return self._put_new(items, counters, trust_memory=False)
        already = [key for key, reason in zip(keys, reasons) if reason == CHECK_FAILED]
        if not already:
            raise StorageError(f"DynamoDB table {self.table_name!r}: transaction cancelled: {reasons}")
        return already

    def _transact(self, actions: Sequence[dict[str, Any]]) -> Sequence[str] | None:
        """Run one TransactWriteItems: None once committed, else each action's cancellation reason
        when a condition failed. Conflicts with other transactions and throttling are retried."""
        delay = 0.02
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                self.client.transact_write_items(TransactItems=list(actions))
                return None
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code", "None") for r in e.response.get("CancellationReasons", [])]
                if CHECK_FAILED in reasons:
                    return reasons
                if attempt == TRANSACTION_ATTEMPTS or not TRANSIENT.intersection(reasons):
                    raise
            time.sleep(random.uniform(delay / 2, delay))
            delay = min(2 * delay, 1.0)
        raise AssertionError("unreachable")

    def _add_action(self, pk: str, terms: Terms, must_exist: bool = False) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": pk}},
            "UpdateExpression": "ADD " + ", ".join(f"#{i} :{i}" for i in range(len(terms))),
            "ExpressionAttributeNames": {f"#{i}": COUNTER_PREFIX + name for i, name in enumerate(terms)},
            "ExpressionAttributeValues": {f":{i}": {"N": text} for i, text in enumerate(terms.values())},
        }
        if must_exist:
            update["ConditionExpression"] = "attribute_exists(pk)"
        return {"Update": update}

    def _apply_carried(self, key: str, group: Sequence[Sequence[Any]], entry: str) -> None:
        """Step (2) of a big batch: ADD the counters a carrier holds, exactly once, then forget it."""
        take = {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": {"S": key}},
                "UpdateExpression": "REMOVE #c",
                "ConditionExpression": "attribute_exists(#c)",
                "ExpressionAttributeNames": {"#c": CARRIED},
            }
        }
        with self._translate("add pending counters"):
            # A failed condition: someone else added them already.
            self._transact([take, *(self._add_action(pk, dict(terms)) for pk, terms in group)])
            self._update_index("DELETE", {PENDING: {entry}})

    def _complete_pending(self, entries: Sequence[str]) -> None:
        now = datetime.now(UTC)
        for entry in entries:
            stamp, _, key = entry.partition("|")
            with self._translate("read pending"):
                item = self.client.get_item(
                    TableName=self.table_name,
                    Key={"pk": {"S": key}},
                    ConsistentRead=True,
                    ProjectionExpression="pk, #c",
                    ExpressionAttributeNames={"#c": CARRIED},
                ).get("Item")
            if item and CARRIED in item:
                self._apply_carried(key, json.loads(item[CARRIED]["S"]), entry)
            elif item or now - utc_from_text(stamp) > PENDING_LEASE:
                with self._translate("remove pending"):
                    self._update_index("DELETE", {PENDING: {entry}})

    def _drop_carried(self, entry: str) -> None:
        key = entry.partition("|")[2]
        with self._translate("drop pending counters"):
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key={"pk": {"S": key}},
                    UpdateExpression="REMOVE #c",
                    ConditionExpression="attribute_exists(#c)",
                    ExpressionAttributeNames={"#c": CARRIED},
                )
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != CONDITION_FAILED:
                    raise
            self._update_index("DELETE", {PENDING: {entry}})

    def _read_index(self) -> dict[str, Any]:
        with self._translate("read aggregate index"):
            response = self.client.get_item(
                TableName=self.table_name, Key={"pk": {"S": AGGREGATE_INDEX_KEY}}, ConsistentRead=True
            )
        return dict(response.get("Item", {}))

    def _add_index_entries(self, entries: set[tuple[str, str]]) -> None:
        if not entries:
            return
        with self._translate("add to aggregate index"):
            self._update_index("ADD", _index_sets(entries))

    def _update_index(self, action: str, sets: Mapping[str, set[str]]) -> None:
        """ADD elements to (or DELETE them from) string sets of the `#aggindex` item."""
        names = list(sets)
        for start in range(0, len(names), MAX_TERMS):
            chunk = {name: sets[name] for name in names[start : start + MAX_TERMS]}
            self.client.update_item(
                TableName=self.table_name, Key={"pk": {"S": AGGREGATE_INDEX_KEY}}, **_set_update(action, chunk)
            )

    def _batch_get(self, keys: Sequence[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(keys), 100):
            chunk = [{"pk": {"S": pk}} for pk in keys[start : start + 100]]
            request: dict[str, Any] = {self.table_name: {"Keys": chunk, "ConsistentRead": True}}
            for attempt in range(1, BATCH_ATTEMPTS + 1):
                with self._translate("read aggregates"):
                    response = self.client.batch_get_item(RequestItems=request)
                yield from response.get("Responses", {}).get(self.table_name, [])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt == BATCH_ATTEMPTS:
                    raise StorageError(f"DynamoDB table {self.table_name!r}: aggregates still unread after retries")
                time.sleep(0.05 * attempt)

    def _batch_write(self, requests: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table_name: list(requests[start : start + 25])}
            for attempt in range(1, BATCH_ATTEMPTS + 1):
                with self._translate("write aggregates"):
                    pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                if attempt == BATCH_ATTEMPTS:
                    raise StorageError(f"DynamoDB table {self.table_name!r}: aggregates still unwritten after retries")
                time.sleep(0.05 * attempt)

    def _read_days(self) -> set[str]:
        with self._translate("get days"):
            try:
                item = self._items.get(DAYS_KEY, consistent_read=True)
            except self._items.DoesNotExist:
                return set()
        return set(item.days or ())

    def _add_days(self, days: set[str]) -> None:
        if not days:
            return
        with self._translate("add days"):
            self._items(DAYS_KEY).update(actions=[self._items.days.add(days)])

    def _register(
        self, days: set[str], entries: set[tuple[str, str]], adds: Mapping[str, Terms], room: int
    ) -> tuple[set[str], Sequence[dict[str, Any]]]:
        """Register the `days` and index `entries` a write needs in `#days` and `#aggindex`, but
        those this object added before and that the aggregate items the write `adds` to can vouch
        for. Returns those items (their ADDs must be conditioned on the item existing, see
        Registrations), and the registrations as updates for the write's own transaction when
        they fit in `room` actions; if not, they are made here, before the write."""
        with self._lock:
            trusted = {(v, e) for v, e in entries if (v, e) in self._indexed and _voucher(v, e) in adds}
            trusted_days = {e for _, e in trusted if e in days and e in self._known_days}
        vouchers = {_voucher(v, e) for v, e in trusted}
        new_days, new_entries = days - trusted_days, entries - trusted
        index_sets = _index_sets(new_entries)
        updates = [
            {"Update": {"TableName": self.table_name, "Key": {"pk": {"S": pk}}, **_set_update("ADD", sets)}}
            for pk, sets in ((DAYS_KEY, {self._items.days.attr_name: new_days}), (AGGREGATE_INDEX_KEY, index_sets))
            if any(sets.values())
        ]
        if len(updates) <= room and len(index_sets) <= MAX_TERMS:
            return vouchers, updates
        self._add_days(new_days)
        self._add_index_entries(new_entries)
        return vouchers, []

    def _remember(self, days: set[str], entries: set[tuple[str, str]]) -> None:
        # Called once a write committed: remembered sooner, a concurrent write of this object could
        # check an aggregate item that is about to exist, and take the table for a new one.
        with self._lock:
            self._known_days.update(days)
            self._indexed.update(entries)

    def _forget_registrations(self) -> None:
        with self._lock:
            self._known_days.clear()
            self._indexed.clear()

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        try:
            yield
        except (PynamoDBException, BotoCoreError, ClientError) as e:
            cause = getattr(e, "cause", None) or e
            raise StorageError(f"DynamoDB table {self.table_name!r}: {action} failed: {cause}") from e


def _index_sets(entries: Collection[tuple[str, str]]) -> dict[str, set[str]]:
    """(version, entry) pairs as the `#aggindex` item's string sets, one per version."""
    sets: dict[str, set[str]] = {}
    for version, entry in entries:
        sets.setdefault(VERSION_PREFIX + version, set()).add(entry)
    return sets


def _set_update(action: str, sets: Mapping[str, Collection[str]]) -> dict[str, Any]:
    """An update's expression that ADDs (or DELETEs) elements of string set attributes."""
    names = list(sets)
    return {
        "UpdateExpression": f"{action} " + ", ".join(f"#{i} :{i}" for i in range(len(names))),
        "ExpressionAttributeNames": {f"#{i}": name for i, name in enumerate(names)},
        "ExpressionAttributeValues": {f":{i}": {"SS": sorted(sets[name])} for i, name in enumerate(names)},
    }


def _aggregate_pk(version: str, day: str, part: str) -> str:
    # The version goes last: it is the only part that may contain "|".
    return f"{AGGREGATE_PREFIX}{day}|{part}|{version}"


def _voucher(version: str, entry: str) -> str:
    """The aggregate item created only after index `entry` (and, for a day's entry, the day) was added."""
    day, _, part = entry.partition("|")
    return _aggregate_pk(version, day, part or "m")


def _indexed_items(
    index: Mapping[str, Any],
    model_version: str | None,
    since: date | None,
    until: date | None,
    groups: Collection[str] | None = None,
) -> dict[str, AggregateKey]:
    """The keys of every aggregate item that `#aggindex` says may exist (of the counter `groups`
    only, when given: a spilled part `<group>.<n>` belongs to its group), and their rows."""
    found: dict[str, AggregateKey] = {}
    for name, value in index.items():
        version = name[len(VERSION_PREFIX):]
        if not name.startswith(VERSION_PREFIX) or model_version not in (None, version):
            continue
        for entry in value["SS"]:
            day, _, part = entry.partition("|")
            if in_days(day, since, until):
                for each in (part,) if part else STANDARD_PARTS:
                    if groups is None or each.partition(".")[0] in groups:
                        found[_aggregate_pk(version, day, each)] = (version, day)
    return found


def _split(
    rows: Mapping[AggregateKey, Mapping[str, float]], max_terms: int
) -> tuple[dict[str, Terms], set[tuple[str, str]]]:
    """Counters per aggregate row -> terms per aggregate item, and the index entries they need."""
    items: dict[str, Terms] = {}
    entries: set[tuple[str, str]] = set()
    for (version, day), counters in rows.items():
        parts: dict[str, Terms] = {}
        for name, value in counters.items():
            text = counter_number(name, value)
            if text is not None:
                parts.setdefault(quality.counter_group(name), {})[name] = text
        for part, terms in parts.items():
            names = sorted(terms)
            for n, start in enumerate(range(0, len(names), max_terms)):
                label = f"{part}.{n}" if n else part
                entries.add((version, day if label in STANDARD_PARTS else f"{day}|{label}"))
                items[_aggregate_pk(version, day, label)] = {k: terms[k] for k in names[start : start + max_terms]}
    return items, entries


def _carrier_groups(parts: Mapping[str, Terms], carriers: int) -> list[list[tuple[str, Terms]]]:
    """The aggregate items split among carriers: each group one transaction with its carrier."""
    groups: list[list[tuple[str, Terms]]] = [[]]
    size = 0
    for pk, terms in parts.items():
        if len(groups[-1]) == MAX_ACTIONS - 1 or (groups[-1] and size + len(terms) > MAX_CARRIED_TERMS):
            groups.append([])
            size = 0
        groups[-1].append((pk, terms))
        size += len(terms)
    if len(groups) > carriers:
        raise ValueError(f"the counters of {carriers} records need {len(groups)} carriers; send smaller batches")
    return groups


def counter_number(name: str, value: float) -> str | None:
    """A counter value as DynamoDB number text (None for zero): whole, or to 20 decimal places."""
    if isinstance(value, int) and not isinstance(value, bool):
        exact = Decimal(value)
    elif isinstance(value, float) and math.isfinite(value):
        with localcontext() as context:
            context.prec = 80
            exact = Decimal(value) if value.is_integer() else Decimal(value).quantize(SCALE)
    else:
        raise ValueError(f"counter {name!r} must be a finite number, not {value!r}")
    if abs(exact) >= MAX_COUNTER:
        raise ValueError(f"counter {name!r} = {value!r} is too large to add exactly")
    return format(exact.normalize(), "f") if exact else None


def _plain(total: Decimal) -> float:
    """A summed counter as a Python number: an int when whole, else the nearest float."""
    return int(total) if total == total.to_integral_value() else float(total)


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
        shadows = UnicodeAttribute(null=True)  # core.records.shadows_json; absent when there are none
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
        shadows=shadows_from_json(item.shadows),
    )


def _decode_cursor(cursor: str) -> str:
    (day_sort,) = decode_cursor(CURSOR_KIND, cursor, (str,))
    created_at, _, digest = day_sort.partition("#")
    cursor_time(created_at)
    if len(digest) != 64:
        raise bad_cursor()
    return day_sort


def open_url(url: str, options: StoreOptions) -> DynamoStore:
    """`dynamodb://TABLE_NAME`: a table in AWS_REGION, or at AWS_ENDPOINT_URL_DYNAMODB."""
    parts = urlsplit(url)
    if not TABLE_NAME.fullmatch(parts.netloc) or parts.path or parts.query or parts.fragment:
        raise BadStoreUrl("a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.', with nothing after it")
    return DynamoStore(parts.netloc, region=options.aws_region, endpoint_url=options.dynamodb_endpoint_url)


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
