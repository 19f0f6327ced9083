"""Comparing aggregates, and driving a service through a random mix of writes (used by several tests)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from core.errors import ConflictingPrediction, UnknownPrediction
from core.model import Model
from core.ports import AggregateRow, PredictionStore
from core.records import PredictionRecord
from core.schema import Schema
from core.service import PredictionService, recompute_aggregates
from tests.helpers import SteppingClock

Rows = dict[tuple[str, str], dict[str, float]]


def is_sum_of_floats(name: str) -> bool:
    """Counters that add probabilities or losses; every other counter counts things."""
    return name in ("sum_proba", "lab_proba", "sq_err", "log_loss") or (name.startswith("cal_") and name.endswith("_p"))


def counter_differences(actual: Mapping[str, float], expected: Mapping[str, float]) -> list[str]:
    """Counts must be equal exactly, sums of floats within 1e-9 relative; a missing counter is 0."""
    problems = []
    for name in sorted(set(actual) | set(expected)):
        a, e = actual.get(name, 0), expected.get(name, 0)
        if is_sum_of_floats(name):
            ok = math.isclose(a, e, rel_tol=1e-9, abs_tol=1e-12)
        else:
            ok = a == e and float(a).is_integer()
        if not ok:
            problems.append(f"{name}: {a!r} != {e!r}")
    return problems


def as_rows(rows: Iterable[AggregateRow]) -> Rows:
    return {(row.model_version, row.day): dict(row.counters) for row in rows}


def assert_rows_equal(actual: Rows, expected: Rows) -> None:
    # A row whose counters are all zero is the same as no row.
    keys = {k for k, c in actual.items() if any(c.values())} | {k for k, c in expected.items() if any(c.values())}
    problems: list[str] = []
    for key in sorted(keys):
        diff = counter_differences(actual.get(key, {}), expected.get(key, {}))
        problems.extend(f"{key}: {d}" for d in diff[:5])
    assert not problems, "\n".join(problems)


def summed_by_version(rows: Rows) -> dict[str, dict[str, float]]:
    """What `aggregate_totals` must return for these day rows."""
    totals: dict[str, dict[str, float]] = {}
    for (version, _), counters in rows.items():
        version_totals = totals.setdefault(version, {})
        for name, value in counters.items():
            version_totals[name] = version_totals.get(name, 0) + value
    return totals


def assert_totals_equal(actual: dict[str, dict[str, float]], expected: dict[str, dict[str, float]]) -> None:
    """Like `assert_rows_equal`, for one mapping of summed counters per version."""
    assert_rows_equal({(v, ""): c for v, c in actual.items()}, {(v, ""): c for v, c in expected.items()})


def all_records(store: PredictionStore) -> list[PredictionRecord]:
    records: list[PredictionRecord] = []
    cursor = None
    while True:
        page = store.list(500, cursor)
        records.extend(page.items)
        if (cursor := page.next_cursor) is None:
            return records


def recomputed(records: list[PredictionRecord], models: Iterable[Model]) -> Rows:
    """What the aggregates must be: every record's counters, drift by the model that served it."""
    rows: Rows = {}
    for model in models:
        own, _ = recompute_aggregates([r for r in records if r.model_version == model.version], model)
        rows.update(own)
    return rows


def assert_aggregates_match_records(store: PredictionStore, models: Iterable[Model]) -> None:
    """The store's day rows equal a recomputation over its records, and its totals their sums."""
    rows = as_rows(store.aggregates())
    assert_rows_equal(rows, recomputed(all_records(store), models))
    assert_totals_equal(store.aggregate_totals(), summed_by_version(rows))


def random_observation(rng: random.Random, schema: Schema) -> dict[str, Any]:
    """A valid observation, now and then with nulls, unseen categories and values out of range."""
    observation: dict[str, Any] = {}
    for feature in schema.features:
        roll = rng.random()
        if feature.nullable and roll < 0.1:
            observation[feature.name] = None
        elif feature.kind == "category":
            observation[feature.name] = "never-seen" if roll > 0.95 else rng.choice(feature.categories)
        else:
            low, high = feature.seen_min or 0.0, (feature.seen_max or 100.0) * (1.3 if roll > 0.9 else 1.0)
            value = rng.uniform(low, high)
            observation[feature.name] = int(value) if feature.kind == "integer" else round(value, 2)
    return observation


def stopped_clock(start: datetime) -> SteppingClock:
    """A clock that stays at `start` until the test moves its `now` (random_mix does)."""
    return SteppingClock(timedelta(0), start)


def other_version(model: Model, name: str = "previous-model") -> Model:
    """The same model under another version: its predictions land in other aggregate rows."""
    return replace(model, version=name)


def random_mix(
    store: PredictionStore,
    models: list[Model],
    clock: SteppingClock,
    seed: int,
    steps: int,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Predictions, batches, retries, conflicts and outcomes in a seeded random order.

    Returns how many of each operation ran, so a test can check the mix covered everything.
    """
    rng = random.Random(seed)
    services = [PredictionService(model, store, clock) for model in models]
    known: dict[Any, tuple[PredictionService, dict[str, Any]]] = {}
    done: dict[str, int] = {}
    next_id = [0]

    def new_id() -> Any:
        next_id[0] += 1
        return f"s{seed}-{next_id[0]}" if next_id[0] % 2 else seed * 1_000_000 + next_id[0]

    def count(name: str) -> None:
        done[name] = done.get(name, 0) + 1

    def different(observation: dict[str, Any], schema: Schema) -> dict[str, Any]:
        while True:
            other = random_observation(rng, schema)
            if other != observation:
                return other

    for step in range(steps):
        clock.now += timedelta(minutes=rng.choice([0, 0, 1, 7, 90, 400, 1000]), microseconds=rng.randrange(10**6))
        service = rng.choice(services)
        roll = rng.random()
        if roll < 0.25 or not known:
            prediction_id, observation = new_id(), random_observation(rng, service.model.schema)
            service.predict(prediction_id, observation)
            known[prediction_id] = (service, observation)
            count("new")
        elif roll < 0.33:
            prediction_id = rng.choice(list(known))
            owner, observation = known[prediction_id]
            assert owner.predict(prediction_id, observation)[1] is False
            count("retry")
        elif roll < 0.40:
            prediction_id = rng.choice(list(known))
            owner, observation = known[prediction_id]
            try:
                owner.predict(prediction_id, different(observation, owner.model.schema))
                raise AssertionError("a conflicting prediction was stored")
            except ConflictingPrediction:
                count("conflict")
        elif roll < 0.55:
            items: list[tuple[Any, dict[str, Any]]] = []
            for _ in range(rng.randint(2, 12)):
                kind = rng.random()
                if kind < 0.2 and known:
                    prediction_id = rng.choice(list(known))
                    if known[prediction_id][0] is service:
                        items.append((prediction_id, known[prediction_id][1]))
                elif kind < 0.3 and items:
                    items.append(rng.choice(items))
                else:
                    items.append((new_id(), random_observation(rng, service.model.schema)))
            if len(items) < 1:
                items.append((new_id(), random_observation(rng, service.model.schema)))
            service.predict_batch(items)
            for prediction_id, observation in items:
                known.setdefault(prediction_id, (service, observation))
            count("batch")
        elif roll < 0.60:
            taken = rng.choice(list(known))
            owner, observation = known[taken]
            items = [(new_id(), random_observation(rng, owner.model.schema)) for _ in range(rng.randint(1, 5))]
            items.insert(rng.randrange(len(items) + 1), (taken, different(observation, owner.model.schema)))
            try:
                owner.predict_batch(items)
                raise AssertionError("a batch with a conflicting prediction was stored")
            except ConflictingPrediction:
                count("conflicting batch")
        elif roll < 0.95:
            prediction_id = rng.choice(list(known))
            stored = service.record_outcome(prediction_id, rng.choice([0, 1, True, False]))
            assert stored.true_class in (0, 1)
            count("outcome")
        else:
            try:
                service.record_outcome(new_id(), 1)
                raise AssertionError("an outcome was stored for an unknown prediction")
            except UnknownPrediction:
                count("unknown outcome")
        if on_step is not None:
            on_step(step)
    return done
