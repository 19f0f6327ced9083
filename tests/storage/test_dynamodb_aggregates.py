"""What only the DynamoDB store does for aggregates: hidden items, big batches in two steps, failures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from adapters.storage import DynamoStore
from adapters.storage.dynamodb import (
    AGGREGATE_INDEX_KEY,
    CARRIED,
    PENDING,
    TRANSACTION_ATTEMPTS,
    counter_number,
)
from core import quality
from core.errors import StorageError, UnknownPrediction
from core.ports import MAX_BATCH
from core.quality import outcome_counters
from core.records import PredictionId
from tests.storage.aggregate_checks import as_rows, assert_rows_equal
from tests.storage.records import REGION, T0, fresh_table_name, make_record

pytestmark = pytest.mark.usefixtures("aws_credentials")
VERSION, DAY = "titanic-1", "2024-03-01"


@pytest.fixture
def store() -> Iterator[DynamoStore]:
    with mock_aws():
        dynamo_store = DynamoStore(fresh_table_name(), region=REGION)
        dynamo_store.create_table()
        yield dynamo_store


class Faults:
    """Makes chosen calls of one store's client fail, as a network outage or a busy table would."""

    def __init__(self, store: DynamoStore) -> None:
        self.events = store.client.meta.events
        self.calls: list[str] = []  # calls that reached the table
        self.cancelled = 0
        self.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **kwargs: Any) -> None:
        self.calls.append(model.name)

    def unreachable(self, operation: str, when: Callable[[bytes], bool] = lambda body: True) -> None:
        """Calls of `operation` whose JSON body satisfies `when` cannot connect (retries included)."""

        def fail(request: Any, **kwargs: Any) -> None:
            body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
            if when(body):
                raise EndpointConnectionError(endpoint_url="http://unreachable.invalid")

        self.events.register_first(f"before-send.dynamodb.{operation}", fail)

    def conflicting(self, times: int, before: Callable[[], object] = lambda: None) -> None:
        """The next `times` transactions are cancelled by a conflict with another transaction."""
        left = [times]

        def cancel(**kwargs: Any) -> Any:
            if left[0] <= 0:
                return None
            left[0] -= 1
            self.cancelled += 1
            before()
            actions = json.loads(kwargs["params"]["body"])["TransactItems"]
            reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (len(actions) - 1)
            error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
            return SimpleNamespace(status_code=400, headers={}), {"Error": error, "CancellationReasons": reasons}

        self.events.register_first("before-call.dynamodb.TransactWriteItems", cancel)


def raw_items(store: DynamoStore) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": store.table_name, "ConsistentRead": True}
    while True:
        page = store.client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def index_item(store: DynamoStore) -> dict[str, Any]:
    return dict(store.client.get_item(TableName=store.table_name, Key={"pk": {"S": AGGREGATE_INDEX_KEY}})["Item"])


def full_batch(prefix: str = "") -> tuple[list[Any], list[dict[str, float]]]:
    records = [make_record(f"{prefix}{i}", {"i": i}) for i in range(MAX_BATCH)]
    counters = [{"n": 1, "sum_proba": 0.8125, f"f|Cabin|c|C{i}": 1} for i in range(MAX_BATCH)]
    return records, counters


def test_aggregate_items_are_never_listed_indexed_or_mistaken_for_a_prediction(store: DynamoStore) -> None:
    # String ids that look like the store's own keys are ids like any other (their keys are JSON).
    ids: list[PredictionId] = ["#aggindex", f"#agg|{DAY}|m|{VERSION}", "#days", 1]
    for n, prediction_id in enumerate(ids):
        store.record(make_record(prediction_id, {"n": n}, at=T0 + timedelta(seconds=n)), {"n": 1, "h1_555": 1})
    store.set_outcome(1, 1, T0, outcome_counters)

    assert [r.id for r in store.list(10).items] == list(reversed(ids))
    assert [store.get(i).observation for i in ids] == [{"n": n} for n in range(len(ids))]
    items = raw_items(store)
    own = [item for item in items if item["pk"]["S"].startswith("#")]
    expected = {AGGREGATE_INDEX_KEY, f"#agg|{DAY}|m|{VERSION}", f"#agg|{DAY}|h5|{VERSION}"}
    assert {item["pk"]["S"] for item in own} >= expected
    assert all("day" not in item and "day_sort" not in item for item in own)
    assert store.aggregates()[0].counters["n"] == len(ids)


def test_aggregates_read_the_index_and_the_row_items_only_however_many_predictions(store: DynamoStore) -> None:
    faults = Faults(store)
    store.record_many([make_record(i, {"i": i}) for i in range(3)], [{"n": 1}] * 3)
    faults.calls.clear()
    store.aggregates()
    few = list(faults.calls)

    store.record_many([make_record(i, {"i": i}) for i in range(3, 60)], [{"n": 1}] * 57)
    faults.calls.clear()
    rows = store.aggregates()

    assert faults.calls == few == ["GetItem", "BatchGetItem"]
    assert rows[0].counters == {"n": 60}


def test_a_full_batch_spills_big_parts_and_keeps_no_pending_counters(store: DynamoStore) -> None:
    records, counters = full_batch()

    store.record_many(records, counters)

    index = index_item(store)
    assert PENDING not in index
    assert set(index[f"v:{VERSION}"]["SS"]) == {DAY, f"{DAY}|m.1"}
    assert not [item for item in raw_items(store) if CARRIED in item]
    assert_rows_equal(as_rows(store.aggregates()), {(VERSION, DAY): quality.merged(counters)})


def test_a_batch_whose_second_step_fails_is_stored_and_counted_by_the_next_read(store: DynamoStore) -> None:
    records, counters = full_batch()
    faults = Faults(store)
    faults.unreachable("TransactWriteItems", when=lambda body: b"REMOVE" in body)

    results = store.record_many(records, counters)

    assert all(created for _, created in results)
    pending = index_item(store)[PENDING]["SS"]
    assert len(pending) == 1
    carriers = [item for item in raw_items(store) if CARRIED in item]
    assert len(carriers) == 1 and carriers[0]["pk"]["S"] == pending[0].partition("|")[2]
    # A reader that can write completes the batch: once, however many readers try.
    other = DynamoStore(store.table_name, region=REGION)
    expected = {(VERSION, DAY): quality.merged(counters)}
    assert_rows_equal(as_rows(other.aggregates()), expected)
    assert_rows_equal(as_rows(DynamoStore(store.table_name, region=REGION).aggregates()), expected)
    assert PENDING not in index_item(store)
    assert not [item for item in raw_items(store) if CARRIED in item]


def test_a_batch_whose_first_step_fails_stores_nothing_and_counts_nothing(store: DynamoStore) -> None:
    store.record(make_record("before"), {"n": 1})
    records, counters = full_batch()
    faults = Faults(store)
    faults.unreachable("TransactWriteItems")

    with pytest.raises(StorageError):
        store.record_many(records, counters)

    with pytest.raises(UnknownPrediction):
        store.get(records[0].id)
    # The carrier was announced, but it does not exist: the entry is kept for its lease, harmlessly.
    assert len(index_item(store)[PENDING]["SS"]) == 1
    assert as_rows(store.aggregates()) == {(VERSION, DAY): {"n": 1}}
    assert len(index_item(store)[PENDING]["SS"]) == 1


def test_a_pending_entry_without_a_record_is_dropped_once_its_lease_is_over(store: DynamoStore) -> None:
    store.record(make_record(1), {"n": 1})
    old, recent = '2000-01-01T00:00:00.000000+00:00|"ghost"', '2999-01-01T00:00:00.000000+00:00|"ghost"'
    store.client.update_item(
        TableName=store.table_name, Key={"pk": {"S": AGGREGATE_INDEX_KEY}}, UpdateExpression="ADD #pending :entries",
        ExpressionAttributeNames={"#pending": PENDING}, ExpressionAttributeValues={":entries": {"SS": [old, recent]}},
    )

    assert as_rows(store.aggregates()) == {(VERSION, DAY): {"n": 1}}

    assert index_item(store)[PENDING]["SS"] == [recent]


def test_an_unreachable_table_during_a_write_or_an_outcome_leaves_no_record_and_no_counters(
    store: DynamoStore,
) -> None:
    store.record(make_record(1), {"n": 1})
    faults = Faults(store)
    faults.unreachable("TransactWriteItems")

    with pytest.raises(StorageError):
        store.record(make_record(2, {"x": 2}), {"n": 1})
    with pytest.raises(StorageError):
        store.record_many([make_record(3, {"x": 3}), make_record(4, {"x": 4})], [{"n": 1}, {"n": 1}])
    with pytest.raises(StorageError):
        store.set_outcome(1, 1, T0, outcome_counters)

    for missing in (2, 3, 4):
        with pytest.raises(UnknownPrediction):
            store.get(missing)
    assert store.get(1).true_class is None
    assert as_rows(store.aggregates()) == {(VERSION, DAY): {"n": 1}}


def test_a_transaction_cancelled_by_a_conflict_is_retried_and_counted_once(store: DynamoStore) -> None:
    store.record(make_record(1), {"n": 1})
    faults = Faults(store)
    faults.conflicting(times=2)

    store.set_outcome(1, 1, T0, outcome_counters)
    store.record(make_record(2, {"x": 2}), {"n": 1})

    expected = quality.merged([{"n": 2}, quality.outcome_increments(0.8125, True, None, 1)])
    assert_rows_equal(as_rows(store.aggregates()), {(VERSION, DAY): expected})
    assert (faults.cancelled, faults.calls.count("TransactWriteItems")) == (2, 2)


def test_a_conflict_that_never_ends_is_a_storage_error_and_writes_nothing(store: DynamoStore) -> None:
    store.record(make_record(1), {"n": 1})
    faults = Faults(store)
    faults.conflicting(times=TRANSACTION_ATTEMPTS)

    with pytest.raises(StorageError):
        store.set_outcome(1, 1, T0, outcome_counters)

    assert store.get(1).true_class is None
    assert as_rows(store.aggregates()) == {(VERSION, DAY): {"n": 1}}


def test_an_outcome_changed_by_another_writer_meanwhile_is_read_again_and_moved_once(store: DynamoStore) -> None:
    store.record(make_record(1), {"n": 1})
    other = DynamoStore(store.table_name, region=REGION)
    faults = Faults(store)
    # Just before this store's transaction, another writer sets the outcome: the condition on the
    # outcome read fails, and the store starts again from the new one.
    faults.conflicting(times=1, before=lambda: other.set_outcome(1, 1, T0, outcome_counters))

    stored = store.set_outcome(1, 0, T0 + timedelta(minutes=1), outcome_counters)

    assert stored.true_class == 0 and store.get(1).true_class == 0
    expected = quality.merged([{"n": 1}, quality.outcome_increments(0.8125, True, None, 0)])
    assert_rows_equal(as_rows(store.aggregates()), {(VERSION, DAY): expected})


def recreate_table(store: DynamoStore) -> None:
    """Delete the table and create it again, behind the back of `store` (as a restarted moto would)."""
    store.client.delete_table(TableName=store.table_name)
    store.create_table()


def test_a_write_of_a_day_already_written_is_one_transaction_and_nothing_else(store: DynamoStore) -> None:
    store.record(make_record(1), {"n": 1})
    faults = Faults(store)

    store.record(make_record(2, {"x": 2}), {"n": 1})
    store.record_many([make_record(3, {"x": 3}), make_record(4, {"x": 4})], [{"n": 1}, {"n": 1}])
    store.set_outcome(1, 1, T0, outcome_counters)

    assert faults.calls == ["TransactWriteItems", "TransactWriteItems", "GetItem", "TransactWriteItems"]


def test_predictions_and_counters_written_after_the_table_is_recreated_are_listed_and_read(
    store: DynamoStore,
) -> None:
    store.record(make_record(1), {"n": 1, "h1_555": 1})
    recreate_table(store)

    store.record(make_record(2), {"n": 1, "h1_555": 1})

    assert [r.id for r in store.list(10).items] == [2]
    assert as_rows(store.aggregates()) == {(VERSION, DAY): {"n": 1, "h1_555": 1}}


def test_an_outcome_set_after_the_table_is_recreated_is_counted(store: DynamoStore) -> None:
    store.record(make_record(1), {"n": 1})
    recreate_table(store)
    # Without counters: no aggregate item of the day exists in the new table.
    store.record(make_record(2))

    store.set_outcome(2, 1, T0, outcome_counters)

    expected = quality.outcome_increments(0.8125, True, None, 1)
    assert_rows_equal(as_rows(store.aggregates()), {(VERSION, DAY): expected})


def test_replace_aggregates_drops_pending_counters_that_the_recomputation_already_holds(store: DynamoStore) -> None:
    records, counters = full_batch()
    Faults(store).unreachable("TransactWriteItems", when=lambda body: b"REMOVE" in body)
    store.record_many(records, counters)
    assert PENDING in index_item(store)

    other = DynamoStore(store.table_name, region=REGION)
    other.replace_aggregates([])

    assert other.aggregates() == []
    assert not [item for item in raw_items(store) if CARRIED in item]


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1"), (-3, "-3"), (2.0, "2"), (0.8125, "0.8125"), (0.1, "0.10000000000000000555"), (1e-25, None), (0, None)],
)
def test_counters_are_sent_as_exact_decimals_of_at_most_20_places(value: float, text: str | None) -> None:
    assert counter_number("c", value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e18, "1"])
def test_a_counter_that_cannot_be_added_exactly_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="counter"):
        counter_number("c", value)
