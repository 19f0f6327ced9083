"""The aggregate part of the PredictionStore contract (core/ports.py), run against every backend."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from core import quality
from core.errors import ConflictingPrediction, UnknownPrediction
from core.model import default_model
from core.ports import MAX_BATCH, AggregateRow, PredictionStore
from core.quality import outcome_counters
from core.service import PredictionService
from tests.storage.aggregate_checks import (
    Rows,
    all_records,
    as_rows,
    assert_rows_equal,
    assert_totals_equal,
    other_version,
    random_mix,
    random_observation,
    recomputed,
    stopped_clock,
    summed_by_version,
)
from tests.storage.records import T0, make_record

DAY = "2024-03-01"
VERSION = "titanic-1"
SERVED = {"n": 1, "n_pos_pred": 1, "sum_proba": 0.8125, "f|Sex|c|female": 1}


def rows(store: PredictionStore, **filters: object) -> Rows:
    return as_rows(store.aggregates(**filters))  # type: ignore[arg-type]


def times(counters: dict[str, float], k: int) -> dict[str, float]:
    return {name: value * k for name, value in counters.items()}


def test_a_new_store_has_no_aggregates(store: PredictionStore) -> None:
    assert store.aggregates() == []


def test_the_counters_of_a_new_record_are_added_to_its_version_and_utc_day(store: PredictionStore) -> None:
    store.record(make_record(1), SERVED)
    store.record(make_record(2, {"x": 2}, proba=0.25), {"n": 1, "sum_proba": 0.25, "f|Sex|c|male": 1})
    # 2024-03-02 01:00 at +05:00 is 2024-03-01 20:00 UTC: the row of March 1st.
    east = datetime(2024, 3, 2, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    store.record(make_record(3, {"x": 3}, at=east), {"n": 1})

    assert rows(store) == {
        (VERSION, DAY): {"n": 3, "n_pos_pred": 1, "sum_proba": 1.0625, "f|Sex|c|female": 1, "f|Sex|c|male": 1}
    }


def test_a_record_without_counters_adds_nothing(store: PredictionStore) -> None:
    store.record(make_record(1))
    store.record(make_record(2), {})
    store.record_many([make_record(3), make_record(4)])

    assert store.aggregates() == []


def test_an_exact_retry_adds_nothing(store: PredictionStore) -> None:
    store.record(make_record(1), SERVED)

    assert store.record(make_record(1), SERVED)[1] is False
    assert store.record_many([make_record(1), make_record(1)], [SERVED, SERVED])[0][1] is False

    assert rows(store) == {(VERSION, DAY): SERVED}


def test_a_conflicting_record_adds_nothing(store: PredictionStore) -> None:
    store.record(make_record(1, {"x": 1}), SERVED)

    with pytest.raises(ConflictingPrediction):
        store.record(make_record(1, {"x": 2}), {"n": 1, "odd": 5})

    assert rows(store) == {(VERSION, DAY): SERVED}


def test_a_batch_with_a_conflict_adds_nothing_not_even_for_its_new_records(store: PredictionStore) -> None:
    store.record(make_record("taken", {"x": 1}), SERVED)
    batch = [make_record("new-1"), make_record("taken", {"x": 2}), make_record("new-2", at=T0 + timedelta(days=1))]

    with pytest.raises(ConflictingPrediction):
        store.record_many(batch, [{"n": 1, "odd": 1}] * 3)
    with pytest.raises(ConflictingPrediction):
        store.record_many([make_record("a"), make_record("b", {"x": 1}), make_record("b", {"x": 2})], [{"n": 1}] * 3)

    assert rows(store) == {(VERSION, DAY): SERVED}


def test_a_batch_adds_the_counters_of_each_new_record_to_its_own_row(store: PredictionStore) -> None:
    old, _ = store.record(make_record("old"), SERVED)
    batch = [
        make_record("a"),
        make_record("old"),  # a retry: its counters are not added again
        make_record("b", {"b": 1}, model_version="titanic-2"),
        make_record("c", {"c": 1}, at=T0 + timedelta(days=1)),
        make_record("a"),  # a repeat within the batch: stored once, counted once
    ]
    counters: list[dict[str, float]] = [
        SERVED, {"n": 100}, {"n": 1, "sum_proba": 0.5}, {"n": 1, "sum_proba": 0.25}, SERVED,
    ]

    results = store.record_many(batch, counters)

    assert [created for _, created in results] == [True, False, True, True, False]
    assert rows(store) == {
        (VERSION, DAY): times(SERVED, 2),
        (VERSION, "2024-03-02"): {"n": 1, "sum_proba": 0.25},
        ("titanic-2", DAY): {"n": 1, "sum_proba": 0.5},
    }


def test_a_full_batch_adds_every_counter_of_every_record(store: PredictionStore) -> None:
    # Many distinct counter names (one category per record), like a wide categorical feature.
    batch = [make_record(i, {"i": i}) for i in range(MAX_BATCH)]
    counters = [{"n": 1, "sum_proba": 0.8125, f"f|Cabin|c|C{i}": 1, "f|Sex|c|female": 1} for i in range(MAX_BATCH)]

    assert all(created for _, created in store.record_many(batch, counters))

    expected = quality.merged(counters)
    assert_rows_equal(rows(store), {(VERSION, DAY): expected})
    assert store.record_many(batch, counters)[0][1] is False
    assert_rows_equal(rows(store), {(VERSION, DAY): expected})


def test_a_full_batch_with_one_conflict_adds_nothing(store: PredictionStore) -> None:
    store.record(make_record("taken", {"x": 1}), SERVED)
    batch = [make_record(i, {"i": i}) for i in range(MAX_BATCH - 1)] + [make_record("taken", {"x": 2})]

    with pytest.raises(ConflictingPrediction):
        store.record_many(batch, [{"n": 1, f"f|Cabin|c|C{i}": 1} for i in range(MAX_BATCH)])

    assert rows(store) == {(VERSION, DAY): SERVED}
    with pytest.raises(UnknownPrediction):
        store.get(0)


def test_an_outcome_adds_its_increments_to_the_row_of_the_prediction(store: PredictionStore) -> None:
    store.record(make_record(1, at=T0 - timedelta(days=3)), SERVED)

    store.set_outcome(1, 1, T0, outcome_counters)

    outcome = quality.outcome_increments(0.8125, True, None, 1)
    assert_rows_equal(rows(store), {(VERSION, "2024-02-27"): quality.merged([SERVED, outcome])})


def test_a_replaced_outcome_is_moved_not_counted_twice(store: PredictionStore) -> None:
    store.record(make_record(1), SERVED)
    store.record(make_record(2, {"x": 2}, proba=0.125, predicted_class=False), {"n": 1, "sum_proba": 0.125})

    store.set_outcome(1, 1, T0, outcome_counters)
    store.set_outcome(1, 0, T0 + timedelta(minutes=1), outcome_counters)
    store.set_outcome(1, 0, T0 + timedelta(minutes=2), outcome_counters)
    store.set_outcome(2, 0, T0, outcome_counters)
    store.set_outcome(2, 1, T0, outcome_counters)

    expected = quality.merged([
        SERVED,
        {"n": 1, "sum_proba": 0.125},
        quality.outcome_increments(0.8125, True, None, 0),
        quality.outcome_increments(0.125, False, None, 1),
    ])
    assert_rows_equal(rows(store), {(VERSION, DAY): expected})


def test_an_outcome_for_an_unknown_id_adds_nothing(store: PredictionStore) -> None:
    store.record(make_record(1), SERVED)

    with pytest.raises(UnknownPrediction):
        store.set_outcome("1", 1, T0, outcome_counters)

    assert rows(store) == {(VERSION, DAY): SERVED}


def test_aggregates_are_ordered_and_filtered_by_version_and_inclusive_days(store: PredictionStore) -> None:
    for n, (version, days) in enumerate([("b", 0), ("a", 2), ("b", 1), ("a", 0), ("b", 2), ("a", 1)]):
        store.record(make_record(n, {"n": n}, model_version=version, at=T0 + timedelta(days=days)), {"n": n + 1})
    first, second, third = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)

    assert [(r.model_version, r.day) for r in store.aggregates()] == [
        ("a", "2024-03-01"), ("a", "2024-03-02"), ("a", "2024-03-03"),
        ("b", "2024-03-01"), ("b", "2024-03-02"), ("b", "2024-03-03"),
    ]
    assert [r.day for r in store.aggregates("a")] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert [(r.model_version, r.day) for r in store.aggregates(since=second, until=second)] == [
        ("a", "2024-03-02"), ("b", "2024-03-02"),
    ]
    assert [r.day for r in store.aggregates("b", since=second)] == ["2024-03-02", "2024-03-03"]
    assert [r.day for r in store.aggregates("b", until=first)] == ["2024-03-01"]
    assert store.aggregates("b", since=third, until=third) == [AggregateRow("b", "2024-03-03", {"n": 5})]
    assert store.aggregates("c") == []
    assert store.aggregates(since=date(2024, 3, 4)) == []


def test_aggregates_can_be_limited_to_some_counter_names(store: PredictionStore) -> None:
    store.record(make_record(1), SERVED)
    store.record(make_record(2, model_version="other", at=T0 + timedelta(days=1)), {"sum_proba": 0.5})

    assert rows(store, names=("n", "f|Sex|c|female", "absent")) == {(VERSION, DAY): {"n": 1, "f|Sex|c|female": 1}}
    assert rows(store, names=["sum_proba"]) == {
        (VERSION, DAY): {"sum_proba": 0.8125},
        ("other", "2024-03-02"): {"sum_proba": 0.5},
    }
    assert rows(store, model_version="other", names=quality.DAILY_COUNTERS) == {}
    assert store.aggregates(names=()) == []


def test_totals_sum_each_versions_days_and_follow_the_version_and_day_filters(store: PredictionStore) -> None:
    for n, (version, days) in enumerate([("b", 0), ("a", 2), ("b", 1), ("a", 0), ("b", 2), ("a", 1)]):
        at = T0 + timedelta(days=days)
        store.record(make_record(n, {"n": n}, model_version=version, at=at), {"n": n + 1, f"d{days}": 1})
    store.set_outcome(1, 1, T0 + timedelta(days=3), outcome_counters)
    second, third = date(2024, 3, 2), date(2024, 3, 3)
    outcome = quality.outcome_increments(0.8125, True, None, 1)

    assert_totals_equal(store.aggregate_totals(), summed_by_version(rows(store)))
    assert_totals_equal(store.aggregate_totals(), {
        "a": {"n": 2 + 4 + 6, "d0": 1, "d1": 1, "d2": 1, **outcome},
        "b": {"n": 1 + 3 + 5, "d0": 1, "d1": 1, "d2": 1},
    })
    assert store.aggregate_totals("b") == {"b": {"n": 9, "d0": 1, "d1": 1, "d2": 1}}
    assert store.aggregate_totals(since=second, until=second) == {"a": {"n": 6, "d1": 1}, "b": {"n": 3, "d1": 1}}
    assert store.aggregate_totals("b", since=second) == {"b": {"n": 8, "d1": 1, "d2": 1}}
    assert store.aggregate_totals("a", until=second) == {"a": {"n": 10, "d0": 1, "d1": 1}}
    assert_totals_equal(store.aggregate_totals("a", since=third), {"a": {"n": 2, "d2": 1, **outcome}})
    assert store.aggregate_totals("c") == {}
    assert store.aggregate_totals(since=date(2024, 3, 4)) == {}


def test_replace_aggregates_round_trips_and_drops_every_other_row(store: PredictionStore) -> None:
    store.record(make_record(1), SERVED)
    store.record(make_record(2, model_version="gone"), {"n": 1})
    histogram = {f"h{y}_{b}": 1 + b % 3 for y in (0, 1) for b in range(0, 1000, 7)}
    new_rows = [
        AggregateRow(VERSION, DAY, {"n": 7, "sum_proba": 3.3, "log_loss": 1e-5, **histogram}),
        AggregateRow(VERSION, "2023-12-31", {"n": 2, "f|Embarked|c|S": 2}),
        AggregateRow("v|with|bars", DAY, {"n": 1}),
    ]

    store.replace_aggregates(new_rows)

    assert [(r.model_version, r.day) for r in store.aggregates()] == [
        (VERSION, "2023-12-31"), (VERSION, DAY), ("v|with|bars", DAY),
    ]
    assert_rows_equal(rows(store), as_rows(new_rows))
    assert_totals_equal(store.aggregate_totals(), summed_by_version(as_rows(new_rows)))
    assert "gone" not in store.aggregate_totals()
    store.record(make_record(3, {"x": 3}), {"n": 1})
    assert rows(store)[(VERSION, DAY)]["n"] == 8
    assert store.aggregate_totals(VERSION)[VERSION]["n"] == 10
    store.replace_aggregates([])
    assert store.aggregates() == [] and store.aggregate_totals() == {}


def test_aggregates_equal_a_recomputation_after_a_random_mix_and_repair_restores_them(
    store: PredictionStore,
) -> None:
    served = default_model()
    previous = other_version(served)
    clock = stopped_clock(datetime(2024, 3, 1, 22, 30, tzinfo=UTC))
    service = PredictionService(served, store, clock)
    # moto copies the whole table for every transaction: DynamoDB gets a shorter mix.
    steps = 60 if type(store).__name__ == "DynamoStore" else 300

    done = random_mix(store, [served, previous], clock, seed=7, steps=steps)
    # And the biggest single write a store takes, then outcomes for some of it.
    rng = random.Random(3)
    service.predict_batch([(f"full-{i}", random_observation(rng, served.schema)) for i in range(MAX_BATCH)])
    for i in range(0, MAX_BATCH, 10):
        service.record_outcome(f"full-{i}", i % 3 == 0)

    assert set(done) == {"new", "retry", "conflict", "batch", "conflicting batch", "outcome", "unknown outcome"}
    records = all_records(store)
    expected = recomputed(records, [served, previous])
    assert_rows_equal(rows(store), expected)
    assert_totals_equal(store.aggregate_totals(), summed_by_version(expected))
    assert len({day for _, day in expected}) >= 5 and {v for v, _ in expected} == {served.version, previous.version}

    store.replace_aggregates([])
    assert store.aggregates() == [] and store.aggregate_totals() == {}
    assert service.repair_aggregates(page_size=37) == len(records)

    # The served model knows its own training bins only: another version's drift is not recomputed.
    without_drift = {
        key: {k: v for k, v in counters.items() if key[0] == served.version or not k.startswith("f|")}
        for key, counters in expected.items()
    }
    assert_rows_equal(rows(store), without_drift)
    assert_totals_equal(store.aggregate_totals(), summed_by_version(without_drift))
