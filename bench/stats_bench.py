"""How the cost of /stats grows with the number of stored predictions: service.stats() on SQLite.

    python -m bench.stats_bench [--sizes 1000,100000,1000000]

Each size is one SQLite store (the store's own schema, made by SqliteStore) holding that many
predictions of the shipped model, over 30 UTC days and 2 model versions, 60 % of them with an
outcome. Stores are filled in bulk (executemany in big transactions): the records, and the
aggregates they add up to, computed with the same core.quality increments the service uses.
The bulk path is checked against the service's own recomputation: over every record for the
smallest store, over every record of one (version, day) for the others.

Then service.stats() is timed on every store, over all days and over the last 7, the stores
taking turns round by round; the table shows medians per call and how many counters each call
reads. Over all days it reads each version's running totals (at most one counter per distinct
name: 2000 histogram bins, calibration, confusion, drift buckets) and 4 counters per day for
the daily series, so it does not grow with the number of predictions. A range of days sums
that range's day rows in SQL: its cost follows the days in the range and how full they are.
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.storage import SqliteStore
from bench.stats import interleaved_medians
from core import quality
from core.model import Model, default_model
from core.predict import predict_many
from core.records import canonical_json, id_key
from core.schema import Schema
from core.service import PredictionService, recompute_aggregates

DAYS = 30
FIRST_DAY = datetime(2024, 1, 1, tzinfo=UTC)
LABELED_SHARE = 0.6
POOL = 3000
CHUNK = 50_000
INSERT = (
    "INSERT INTO predictions (id_key, observation, proba, predicted_class, threshold, model_version,"
    " true_class, warnings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ADD = "INSERT INTO aggregates (model_version, day, name, value) VALUES (?, ?, ?, ?)"


def observation(rng: random.Random, schema: Schema) -> dict[str, Any]:
    """A plausible request: values over the training range, some nulls and unseen categories."""
    values: dict[str, Any] = {}
    for feature in schema.features:
        roll = rng.random()
        if feature.nullable and roll < 0.08:
            values[feature.name] = None
        elif feature.kind == "category":
            values[feature.name] = "unheard-of" if roll > 0.97 else rng.choice(feature.categories)
        else:
            low, high = feature.seen_min or 0.0, feature.seen_max or 100.0
            value = low + (high - low) * rng.random() ** 2
            values[feature.name] = int(value) if feature.kind == "integer" else round(value, 2)
    return values


class Pool:
    """Distinct scored observations, each with what its prediction and each outcome add."""

    def __init__(self, model: Model, seed: int) -> None:
        rng = random.Random(seed)
        self.observations = [observation(rng, model.schema) for _ in range(POOL)]
        self.predictions = predict_many(self.observations, model)
        self.texts = [canonical_json(o) for o in self.observations]
        self.served = [
            quality.prediction_increments(model.schema, o, p.proba, p.predicted_class)
            for o, p in zip(self.observations, self.predictions)
        ]
        self.outcomes = [
            {y: quality.outcome_increments(p.proba, p.predicted_class, None, y) for y in (0, 1)}
            for p in self.predictions
        ]


def populate(path: Path, size: int, model: Model, versions: tuple[str, ...], pool: Pool, seed: int) -> None:
    """`size` predictions and their aggregates, written straight into the store's tables."""
    SqliteStore(path).check()  # the store creates its schema
    rng = random.Random(seed)
    tally: Counter[tuple[str, str, int, int | None]] = Counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    rows = []
    for k in range(size):
        j = rng.randrange(POOL)
        version = versions[(k // DAYS) % len(versions)]
        moment = FIRST_DAY + timedelta(days=k % DAYS, seconds=rng.randrange(86_400), microseconds=k % 1_000_000)
        p = pool.predictions[j]
        y = (1 if rng.random() < p.proba else 0) if rng.random() < LABELED_SHARE else None
        created = moment.isoformat(timespec="microseconds")
        rows.append((id_key(k), pool.texts[j], p.proba, int(p.predicted_class), p.threshold, version, y,
                     "[]", created, created))
        tally[(version, created[:10], j, y)] += 1
        if len(rows) == CHUNK:
            conn.executemany(INSERT, rows)
            rows = []
    conn.executemany(INSERT, rows)
    totals: dict[tuple[str, str], dict[str, float]] = {}
    for (version, day, j, y), count in tally.items():
        row = totals.setdefault((version, day), {})
        increments = [pool.served[j]] if y is None else [pool.served[j], pool.outcomes[j][y]]
        for part in increments:
            for name, value in part.items():
                row[name] = row.get(name, 0) + count * value
    conn.executemany(ADD, [(v, d, n, float(x)) for (v, d), c in totals.items() for n, x in c.items() if x])
    conn.execute("COMMIT")
    conn.close()


def check_against_recomputation(store: SqliteStore, model: Model, size: int, whole: bool) -> str:
    """The bulk aggregates equal the service's recomputation over the records (or one row's records)."""
    if whole:
        records = [store.get(k) for k in range(size)]
        expected, _ = recompute_aggregates([r for r in records if r.model_version == model.version], model)
        stored = {(r.model_version, r.day): r.counters for r in store.aggregates(model.version)}
        scope = f"all {len(records)} records"
    else:
        day = 7  # the ids k of that day (k % DAYS) and of the served version ((k // DAYS) % 2 == 0)
        ids = [k for k in range(day, size, DAYS) if (k // DAYS) % 2 == 0]
        records = [store.get(k) for k in ids]
        expected, _ = recompute_aggregates(records, model)
        when = date.fromisoformat(records[0].created_at.date().isoformat())
        stored = {(r.model_version, r.day): r.counters for r in store.aggregates(model.version, when, when)}
        scope = f"the {len(records)} records of {when}"
    for key in set(expected) | set(stored):
        a, e = stored.get(key, {}), expected.get(key, {})
        for name in set(a) | set(e):
            if not math.isclose(a.get(name, 0), e.get(name, 0), rel_tol=1e-9, abs_tol=1e-9):
                raise AssertionError(f"{key} {name}: stored {a.get(name)} != recomputed {e.get(name)}")
    return scope


def most_counters(schema: Schema) -> int:
    """How many distinct counters one aggregate row can ever hold (see core.quality)."""
    fixed = 3 + 5 + 4 + 2 * quality.ROC_BINS + 3 * quality.CALIBRATION_BINS
    return fixed + sum(len(quality.drift_buckets(feature)) for feature in schema.features)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="stored predictions per store")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    model = default_model()
    versions = (model.version, "previous-" + model.version[:12])
    pool = Pool(model, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        services: dict[int, PredictionService] = {}
        for size in sizes:
            path = Path(tmp) / f"stats-{size}.db"
            started = time.perf_counter()
            populate(path, size, model, versions, pool, seed=size)
            store = SqliteStore(path)
            scope = check_against_recomputation(store, model, size, whole=size == min(sizes))
            print(f"filled {size:,} predictions in {time.perf_counter() - started:.1f} s;"
                  f" aggregates match the recomputation over {scope}", file=sys.stderr)
            services[size] = PredictionService(model, store, lambda: datetime.now(UTC))
        week = (date(2024, 1, DAYS - 6), date(2024, 1, DAYS))
        cases: dict[str, tuple[Callable[[], object], int]] = {}
        for size in sizes:
            cases[f"all {size}"] = (services[size].stats, 3)
            cases[f"week {size}"] = (lambda service=services[size]: service.stats(since=week[0], until=week[1]), 3)
        medians = interleaved_medians(cases, rounds=args.rounds)
        shapes = {}
        for size in sizes:
            store = services[size].store
            summary = services[size].stats()
            assert sum(v["predictions"] for v in summary["versions"]) == size
            totals = sum(len(c) for c in store.aggregate_totals().values())
            daily = sum(len(r.counters) for r in store.aggregates(names=quality.DAILY_COUNTERS))
            shapes[size] = (totals, daily, sum(len(r.counters) for r in store.aggregates()))
        for service in services.values():
            service.store.close()  # type: ignore[attr-defined]

    print(f"# service.stats() on SQLite: Python {platform.python_version()}, {platform.machine()}, {sys.platform}")
    print(f"# {DAYS} days x {len(versions)} versions, {LABELED_SHARE:.0%} labeled; medians of {args.rounds} "
          "interleaved rounds\n")
    print("| stored predictions | day-row counters stored | counters stats() reads (totals + daily) |"
          " stats() | vs smallest | stats(last 7 days) | vs smallest |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    first = sizes[0]
    for size in sizes:
        totals, daily, stored = shapes[size]
        everything, week_only = medians[f"all {size}"], medians[f"week {size}"]
        print(f"| {size:,} | {stored:,} | {totals:,} + {daily:,} | {everything * 1e3:.1f} ms |"
              f" {everything / medians[f'all {first}']:.2f}x | {week_only * 1e3:.1f} ms |"
              f" {week_only / medians[f'week {first}']:.2f}x |")
    print(f"\nA version's totals hold at most {most_counters(model.schema):,} counters, however many"
          " predictions and days they sum; the daily series reads"
          f" {len(quality.DAILY_COUNTERS)} counters per (version, day).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
