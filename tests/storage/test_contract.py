"""The PredictionStore contract (core/ports.py), run unchanged against every backend."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ConflictingPrediction, InvalidRequest, UnknownPrediction
from core.ports import PredictionStore
from core.records import PredictionRecord, ShadowScore
from tests.storage.records import T0, make_record


def all_pages(store: PredictionStore, page_size: int) -> list[list[PredictionRecord]]:
    pages = []
    cursor = None
    while True:
        page = store.list(page_size, cursor)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_a_new_id_is_stored_and_reported_as_created(store: PredictionStore) -> None:
    record = make_record(7)

    stored, created = store.record(record)

    assert created is True
    assert stored == record
    assert store.get(7) == record


def test_an_exact_retry_returns_the_stored_record_unchanged(store: PredictionStore) -> None:
    first, _ = store.record(make_record("req-1"))
    retry = make_record("req-1", proba=0.1, model_version="titanic-2", at=T0 + timedelta(seconds=5))

    stored, created = store.record(retry)

    assert created is False
    assert stored == first
    assert store.get("req-1") == first


def test_a_retry_whose_observation_only_differs_in_key_order_is_the_same_request(store: PredictionStore) -> None:
    first, _ = store.record(make_record(1, {"a": 1, "b": [1, 2]}))

    stored, created = store.record(make_record(1, {"b": [1, 2], "a": 1}))

    assert (stored, created) == (first, False)


def test_a_duplicate_id_with_another_observation_is_rejected_and_changes_nothing(store: PredictionStore) -> None:
    first, _ = store.record(make_record(1, {"Age": 29.0}))

    with pytest.raises(ConflictingPrediction) as raised:
        store.record(make_record(1, {"Age": 30.0}, proba=0.2))

    assert raised.value.prediction_id == 1
    assert store.get(1) == first
    assert store.list(10).items == [first]


def test_integer_and_string_ids_with_the_same_digits_are_different_predictions(store: PredictionStore) -> None:
    as_int, created_int = store.record(make_record(1, {"x": "int"}))
    as_str, created_str = store.record(make_record("1", {"x": "str"}))

    assert created_int and created_str
    assert store.get(1) == as_int and type(store.get(1).id) is int
    assert store.get("1") == as_str and type(store.get("1").id) is str
    with pytest.raises(UnknownPrediction):
        store.get("01")


def test_setting_an_outcome_again_replaces_it_and_moves_updated_at(store: PredictionStore) -> None:
    original, _ = store.record(make_record(3))

    first = store.set_outcome(3, 1, T0 + timedelta(minutes=1))
    second = store.set_outcome(3, 0, T0 + timedelta(minutes=2))

    assert (first.true_class, first.updated_at) == (1, T0 + timedelta(minutes=1))
    assert (second.true_class, second.updated_at) == (0, T0 + timedelta(minutes=2))
    assert second.created_at == original.created_at
    assert store.get(3) == second == original.with_outcome(0, T0 + timedelta(minutes=2))


def test_an_exact_retry_after_an_outcome_returns_the_record_with_its_outcome(store: PredictionStore) -> None:
    store.record(make_record(3))
    with_outcome = store.set_outcome(3, 1, T0 + timedelta(minutes=1))

    assert store.record(make_record(3)) == (with_outcome, False)


def test_setting_the_outcome_of_an_unknown_id_raises_unknown_prediction(store: PredictionStore) -> None:
    store.record(make_record(1))

    with pytest.raises(UnknownPrediction) as raised:
        store.set_outcome("1", 1, T0)

    assert raised.value.prediction_id == "1"
    assert store.list(10).items == [make_record(1)]


def test_getting_an_unknown_id_raises_unknown_prediction(store: PredictionStore) -> None:
    with pytest.raises(UnknownPrediction):
        store.get(404)


def test_listing_an_empty_store_gives_an_empty_last_page(store: PredictionStore) -> None:
    page = store.list(10)

    assert (page.items, page.next_cursor) == ([], None)


def test_list_returns_the_newest_records_first_up_to_the_limit(store: PredictionStore) -> None:
    for minutes in (5, 1, 9, 3):
        store.record(make_record(minutes, at=T0 + timedelta(minutes=minutes)))

    page = store.list(3)

    assert [r.id for r in page.items] == [9, 5, 3]
    assert page.next_cursor is not None
    last = store.list(3, page.next_cursor)
    assert ([r.id for r in last.items], last.next_cursor) == ([1], None)


def test_pages_cover_every_record_exactly_once_newest_first(store: PredictionStore) -> None:
    # 25 records over several UTC days, with some sharing a created_at to the microsecond.
    moments = [T0 - timedelta(hours=7 * (i // 2)) for i in range(25)]
    records = [make_record(f"p{i}", {"i": i}, at=moment) for i, moment in enumerate(moments)]
    store.record_many(records[:10])
    for record in records[10:]:
        store.record(record)

    pages = all_pages(store, 7)

    assert [len(page) for page in pages] == [7, 7, 7, 4]
    listed = [record for page in pages for record in page]
    assert sorted(r.id for r in listed) == sorted(r.id for r in records)
    assert [r.created_at for r in listed] == sorted(moments, reverse=True)
    assert all_pages(store, 7) == pages, "ties must be broken the same way on every call"


def test_a_page_ending_on_the_last_record_has_no_next_cursor(store: PredictionStore) -> None:
    store.record_many([make_record(i, at=T0 + timedelta(seconds=i)) for i in range(4)])

    page = store.list(4)

    assert len(page.items) == 4
    assert page.next_cursor is None


BAD_CURSORS = [
    "",
    "not a cursor",
    "!!!!",
    "\u00e9t\u00e9",
    base64.urlsafe_b64encode(b"[1, 2]").decode(),
    base64.urlsafe_b64encode(b'{"created_at": "2024-01-01"}').decode(),
    base64.urlsafe_b64encode(json.dumps(["sqlite", "yesterday", 3]).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps(["memory", "2024-01-01T00:00:00+00:00", 3]).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps(["dynamodb", "2024-01-01T00:00:00.000000+00:00#abc"]).encode()).decode(),
]


def test_a_cursor_the_store_did_not_make_is_rejected(store: PredictionStore) -> None:
    store.record(make_record(1))

    for cursor in BAD_CURSORS:
        with pytest.raises(InvalidRequest) as raised:
            store.list(5, cursor)
        assert [e.field for e in raised.value.errors] == ["cursor"], cursor


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode())))
def test_any_garbage_cursor_is_rejected_as_an_invalid_request(store: PredictionStore, cursor: str) -> None:
    with pytest.raises(InvalidRequest):
        store.list(5, cursor)


def test_a_limit_below_one_is_rejected(store: PredictionStore) -> None:
    for limit in (0, -1):
        with pytest.raises(InvalidRequest) as raised:
            store.list(limit)
        assert [e.field for e in raised.value.errors] == ["limit"]


def test_record_many_stores_every_new_record_and_returns_exact_retries_unchanged(store: PredictionStore) -> None:
    old, _ = store.record(make_record("old", at=T0 - timedelta(days=1)))

    results = store.record_many([make_record("a"), make_record("old", proba=0.3), make_record(2)])

    assert results == [(make_record("a"), True), (old, False), (make_record(2), True)]
    assert {r.id for r in store.list(10).items} == {"a", "old", 2}


def test_record_many_of_nothing_stores_nothing(store: PredictionStore) -> None:
    assert store.record_many([]) == []
    assert store.list(10).items == []


def test_record_many_stores_nothing_when_one_record_conflicts_with_the_store(store: PredictionStore) -> None:
    stored, _ = store.record(make_record("taken", {"x": 1}))

    with pytest.raises(ConflictingPrediction) as raised:
        store.record_many([make_record("new-1"), make_record("taken", {"x": 2}), make_record("new-2")])

    assert raised.value.prediction_id == "taken"
    assert store.list(10).items == [stored]
    for missing in ("new-1", "new-2"):
        with pytest.raises(UnknownPrediction):
            store.get(missing)


def test_record_many_stores_nothing_when_two_records_of_the_batch_conflict(store: PredictionStore) -> None:
    with pytest.raises(ConflictingPrediction):
        store.record_many([make_record("a"), make_record(5, {"x": 1}), make_record(5, {"x": 2})])

    assert store.list(10).items == []


def test_a_record_repeated_in_one_batch_is_stored_once(store: PredictionStore) -> None:
    results = store.record_many([make_record(5), make_record(5)])

    assert results == [(make_record(5), True), (make_record(5), False)]
    assert store.list(10).items == [make_record(5)]


def test_datetimes_come_back_timezone_aware_in_utc(store: PredictionStore) -> None:
    paris = timezone(timedelta(hours=2))
    created = datetime(2024, 6, 30, 23, 59, 59, 123456, tzinfo=paris)
    store.record(make_record(1, at=created))
    store.set_outcome(1, 1, datetime(2024, 7, 1, 8, 0, 0, 1, tzinfo=paris))

    for record in (store.get(1), store.list(1).items[0]):
        assert record.created_at == created
        assert record.created_at.tzinfo == UTC
        assert record.created_at.utcoffset() == timedelta(0)
        assert record.updated_at == datetime(2024, 7, 1, 6, 0, 0, 1, tzinfo=UTC)
        assert record.updated_at.tzinfo == UTC


def test_a_naive_datetime_is_refused_and_nothing_is_stored(store: PredictionStore) -> None:
    with pytest.raises(ValueError):
        store.record(make_record(1, at=datetime(2024, 1, 1)))

    assert store.list(10).items == []


def test_unicode_ids_and_observations_round_trip(store: PredictionStore) -> None:
    ids = ["żółw-🐢", "名前", 'quote " and \\ backslash', "é" * 256, "🐢" * 256]
    observation = {"Name": "Zoë «Ünïcødé» 🚢", "城市": "東京", "empty": "", "nested": {"list": [None, True, 1.5]}}
    for prediction_id in ids:
        store.record(make_record(prediction_id, observation))

    for prediction_id in ids:
        record = store.get(prediction_id)
        assert record.id == prediction_id
        assert record.observation == observation
    assert sorted(r.id for r in store.list(10).items) == sorted(ids)


def test_every_field_round_trips_exactly(store: PredictionStore) -> None:
    record = make_record(
        2**53 - 1,
        proba=0.1 + 0.2,
        threshold=1e-300,
        predicted_class=False,
        warnings=("Age 120.0 is above the training range", "Fare is missing"),
        true_class=None,
    )
    store.record(record)

    assert store.get(2**53 - 1) == record
    assert store.get(2**53 - 1).proba == 0.30000000000000004
    assert store.list(1).items == [record]
    negative = make_record(-(2**53 - 1), warnings=())
    store.record(negative)
    assert store.get(-(2**53 - 1)) == negative


def test_check_passes_on_a_working_store(store: PredictionStore) -> None:
    store.check()
    store.record(make_record(1))
    store.check()


def test_a_check_leaves_no_trace_in_listings_or_aggregates(store: PredictionStore) -> None:
    """check() may write a row of its own (SQLite, DynamoDB): no reader of records ever sees it."""
    store.record(make_record(1), {"predictions": 1.0})
    before = (store.list(10), store.aggregates(), store.aggregate_totals())
    for _ in range(3):
        store.check()
    assert (store.list(10), store.aggregates(), store.aggregate_totals()) == before


def test_the_challengers_scores_are_kept_with_the_record_and_returned_by_every_read(store: PredictionStore) -> None:
    shadows = (
        ShadowScore("challenger-1", proba=0.123456789012345, predicted_class=False),
        ShadowScore("challenger-2", problem="observation.Fare is missing"),
    )
    record = make_record("with-shadows", shadows=shadows)

    stored, created = store.record(record, {"n": 1})
    retried, again = store.record(make_record("with-shadows"))  # a retry answers what is stored
    updated = store.set_outcome("with-shadows", 1, T0 + timedelta(minutes=1))

    assert created and not again
    assert stored.shadows == retried.shadows == updated.shadows == shadows
    assert store.get("with-shadows").shadows == shadows
    assert store.list(10).items[0].shadows == shadows
    assert store.record(make_record("without"))[0].shadows == ()
