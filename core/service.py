"""The use cases: predict and record, record an outcome, read back. Adapters call only these."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar

from core import comparison, quality, shadows
from core.errors import FieldError, InvalidObservation, InvalidRequest
from core.model import Model
from core.ports import MAX_BATCH, AggregateRow, PredictionStore, Writes
from core.predict import Prediction, predict_many
from core.records import (
    DEFAULT_MAX_STRING_LENGTH,
    Page,
    PredictionId,
    PredictionRecord,
    canonical_json,
    id_problem,
    normalized_id,
    observation_problems,
)

MAX_LIST_LIMIT = 1000
T = TypeVar("T")


def check_true_class(value: Any) -> int:
    """0 or 1 from 0, 1, false or true; anything else is an InvalidRequest."""
    if value is True or value is False:
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    raise InvalidRequest([FieldError("true_class", "must be 0, 1, true or false")])


@dataclass(frozen=True)
class PreparedBatch:
    """Checked and scored observations: the records to store, their counters, and for each
    item of the request the index of the record that answers it (a repeat shares its first's)."""

    records: list[PredictionRecord]
    counters: list[quality.Counters]
    answer_of: tuple[int, ...]

    def answers(self, stored: Sequence[tuple[PredictionRecord, bool]]) -> list[tuple[PredictionRecord, bool]]:
        """Each item's (record, created), from what the store returned for `records`."""
        return [stored[n] for n in self.answer_of]


class PredictionService:
    """Scores observations with one model and records every answer in one store.

    `challengers` (at most core.shadows.MAX_SHADOWS) score every observation too: their scores
    are stored with the record and compared with the champion's in `stats`; the answer is the
    champion's alone. `clock` returns the current timezone-aware UTC time; it is injected so the core stays pure.
    `max_string_length` bounds every string of a stored observation (see
    `core.records.observation_problems`). `writes` says where predict-and-record's blocking
    parts run (see core.ports.Writes); by default in the caller's thread (`DirectWrites`).
    """

    def __init__(
        self,
        model: Model,
        store: PredictionStore,
        clock: Callable[[], datetime],
        max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
        challengers: Sequence[Model] = (),
        writes: Writes | None = None,
    ) -> None:
        if len(challengers) > shadows.MAX_SHADOWS:
            raise ValueError(f"at most {shadows.MAX_SHADOWS} challengers, got {len(challengers)}")
        versions = [model.version, *(c.version for c in challengers)]
        if len(set(versions)) != len(versions):
            raise ValueError("the champion and every challenger must be different models (versions)")
        self.model = model
        self.challengers = tuple(challengers)
        self._challenger_of = {c.version: c for c in challengers}
        self.store = store
        self._direct = DirectWrites(store)
        self.writes: Writes = writes if writes is not None else self._direct
        self.clock = clock
        self.max_string_length = max_string_length
        self._feature_names = frozenset(model.schema.names)
        self._number_names = frozenset(f.name for f in model.schema.features if f.kind != "category")

    def predict(self, prediction_id: Any, observation: Any, strict: bool = False) -> tuple[PredictionRecord, bool]:
        """Score and store one observation; returns (record, created). Retries return the stored record.

        The synchronous form of `predict_and_record` (a notebook's, a test's, a command's): the
        same use case, its blocking work done in the caller's thread whatever the service's `writes`.
        """
        return run_to_end(self._predict_and_record([(prediction_id, observation)], strict, False, self._direct))[0]

    def predict_batch(
        self, items: Sequence[tuple[Any, Any]], strict: bool = False
    ) -> list[tuple[PredictionRecord, bool]]:
        """The synchronous form of `predict_and_record` for a batch (see `predict`)."""
        return run_to_end(self._predict_and_record(items, strict, True, self._direct))

    async def predict_and_record(
        self, items: Sequence[tuple[Any, Any]], strict: bool = False, as_batch: bool = True
    ) -> list[tuple[PredictionRecord, bool]]:
        """Score and store observations, all or nothing: each item's (record, created).

        The use case behind every entry point (HTTP and Lambda await it, `predict` and
        `predict_batch` run it to its end); where its blocking parts run is the service's
        `writes`. Every id and observation is checked before anything is scored or stored;
        InvalidRequest names the fields as the API does: `observations[k].id`,
        `observations[k].observation.Age` in a batch, `id` and `observation.Age` for a single
        item. An exact repeat within the batch is answered twice and stored once.
        """
        return await self._predict_and_record(items, strict, as_batch, self.writes)

    async def _predict_and_record(
        self, items: Sequence[tuple[Any, Any]], strict: bool, as_batch: bool, writes: Writes
    ) -> list[tuple[PredictionRecord, bool]]:
        batch = await writes.score(lambda: self._prepared(items, strict, as_batch))
        return batch.answers(await writes.record_many(batch.records, batch.counters))

    def _prepared(self, items: Sequence[tuple[Any, Any]], strict: bool, as_batch: bool) -> PreparedBatch:
        if not 1 <= len(items) <= MAX_BATCH:
            raise InvalidRequest([FieldError("observations", f"must hold 1 to {MAX_BATCH} items")])
        items = [(normalized_id(prediction_id), observation) for prediction_id, observation in items]
        errors_of: dict[int, list[FieldError]] = {}
        # An exact repeat within the batch is a retry of the same prediction: answered, stored once.
        first: dict[tuple[type, Any], int] = {}
        repeat_of: dict[int, int] = {}
        for index, (prediction_id, observation) in enumerate(items):
            prefix = item_field_prefix(index) if as_batch else ""
            errors = observation_problems(
                observation, self._feature_names, self.max_string_length, prefix, self._number_names
            )
            problem = id_problem(prediction_id)
            key = (type(prediction_id), prediction_id)
            if problem:
                errors.append(FieldError(f"{prefix}id", problem))
            elif key not in first:
                first[key] = index
            elif _same_json(items[first[key]][1], observation):
                repeat_of[index] = first[key]
            else:
                errors.append(FieldError(
                    f"{prefix}id", f"is repeated in this batch (item {first[key]}) with a different observation"
                ))
            if errors:
                errors_of[index] = errors
        predictions: list[Prediction] = []
        try:
            predictions = predict_many([obs for _, obs in items], self.model, strict=strict,
                                       field_prefix=_observation_prefix if as_batch else _single_observation_prefix)
        except InvalidObservation as e:
            for error in e.errors:
                errors_of.setdefault(_item_of(error, as_batch), []).append(error)
        if errors_of:
            raise InvalidRequest([e for index in sorted(errors_of) for e in sorted(errors_of[index], key=_field)])
        now = self.clock()
        kept = [index for index in range(len(items)) if index not in repeat_of]
        shadow_scores = shadows.scores(self.challengers, [items[index][1] for index in kept])
        records = [
            PredictionRecord(
                id=prediction_id,
                observation=observation,
                proba=p.proba,
                predicted_class=p.predicted_class,
                threshold=p.threshold,
                model_version=p.model_version,
                created_at=now,
                updated_at=now,
                warnings=p.warnings,
                shadows=shadow_scores[n],
            )
            for n, ((prediction_id, observation), p) in enumerate(
                (items[index], predictions[index]) for index in kept
            )
        ]
        counters = [
            quality.prediction_increments(self.model.schema, r.observation, r.proba, r.predicted_class) for r in records
        ]
        if self.challengers:
            for record_counters, record in zip(counters, records):
                record_counters.update(shadows.prediction_counters(record))
        # Item k is answered with the stored result of the record its first occurrence made.
        position = {index: n for n, index in enumerate(kept)}
        answer_of = tuple(position[repeat_of.get(index, index)] for index in range(len(items)))
        return PreparedBatch(records, counters, answer_of)

    def record_outcome(self, prediction_id: Any, true_class: Any) -> PredictionRecord:
        """Attach the true outcome (0/1) to a stored prediction; setting it again replaces it."""
        errors = []
        problem = id_problem(prediction_id)
        if problem:
            errors.append(FieldError("id", problem))
        try:
            outcome = check_true_class(true_class)
        except InvalidRequest as e:
            errors.extend(e.errors)
        if errors:
            raise InvalidRequest(errors)
        return self.store.set_outcome(normalized_id(prediction_id), outcome, self.clock(), shadows.outcome_counters)

    def get(self, prediction_id: PredictionId) -> PredictionRecord:
        return self.store.get(prediction_id)

    def stats(
        self, model_version: str | None = None, since: date | None = None, until: date | None = None
    ) -> dict[str, Any]:
        """Live quality per model version, from the store's aggregates (see core.quality).

        Drift is computed for the version this service serves (whose training distribution it
        knows); other versions get their outcome figures only.
        """
        if since is not None and until is not None and since > until:
            raise InvalidRequest([FieldError("since", "must not be after until")])
        # Whole-range figures from each version's totals, the daily series from a few counters
        # per day: neither read grows with the number of predictions. Challengers' counters are
        # in the rows of the champions they shadowed (core.shadows).
        totals = self.store.aggregate_totals(model_version, since, until)
        # Challengers are named by tags in counter names: back to their versions, for those this
        # service or the store still knows of.
        known = [self.model.version, *self._challenger_of, *totals]
        # Configured challengers are listed before they scored anything; with a version filter,
        # only what that champion's rows hold.
        own_of: dict[str, quality.Counters] = {} if model_version else {v: {} for v in self._challenger_of}
        for counters in totals.values():
            own = shadows.split(counters, shadows.OWN)
            for t, version in shadows.named(own, known).items():
                quality.add(own_of.setdefault(version, {}), own[t])
        daily_names = [*quality.DAILY_COUNTERS,
                       *(f"{shadows.OWN}{shadows.tag(v)}|{name}" for v in own_of for name in quality.DAILY_COUNTERS)]
        days_of: dict[str, dict[str, dict[str, float]]] = {}
        challenger_days: dict[str, dict[str, dict[str, float]]] = {}
        for row in self.store.aggregates(model_version, since, until, daily_names):
            days_of.setdefault(row.model_version, {})[row.day] = shadows.champion_only(row.counters)
            own = shadows.split(row.counters, shadows.OWN)
            for t, version in shadows.named(own, known).items():
                quality.add(challenger_days.setdefault(version, {}).setdefault(row.day, {}), own[t])
        versions = []
        for version, counters in sorted(totals.items(), key=lambda kv: (kv[0] != self.model.version, kv[0])):
            schema = self.model.schema if version == self.model.version else None
            versions.append(
                {
                    "model_version": version,
                    "role": "champion",
                    "serving": version == self.model.version,
                    "shadowing": [],
                    **quality.summarise(schema, shadows.champion_only(counters)),
                    "daily": quality.daily_series(days_of.get(version, {})),
                }
            )
        for version, challenger_counters in sorted(own_of.items(),
                                                   key=lambda kv: (kv[0] not in self._challenger_of, kv[0])):
            prefix = f"{shadows.OWN}{shadows.tag(version)}|"
            versions.append(
                {
                    "model_version": version,
                    "role": "challenger",
                    "serving": False,
                    "shadowing": sorted(v for v, c in totals.items() if any(n.startswith(prefix) for n in c)),
                    **quality.summarise(None, challenger_counters),  # no drift: it serves no traffic
                    "daily": quality.daily_series(challenger_days.get(version, {})),
                }
            )
        # Every pair that shared traffic, the served champion's first: a promoted challenger's
        # comparison with the champion it replaced stays.
        comparisons = []
        for champion, champion_totals in sorted(totals.items(), key=lambda kv: (kv[0] != self.model.version, kv[0])):
            paired = shadows.split(champion_totals, shadows.PAIRED)
            for t, challenger in sorted(shadows.named(paired, known).items(), key=lambda kv: kv[1]):
                comparisons.append({"challenger": challenger, "champion": champion, **comparison.compare(paired[t])})
        return {
            "model_version": self.model.version,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "thresholds": {"psi_alert": quality.PSI_ALERT, "unseen_alert": quality.UNSEEN_ALERT},
            "versions": versions,
            "comparison": comparisons,
        }

    def repair_aggregates(self, page_size: int = 1000) -> int:
        """Recompute every aggregate from the stored records and replace them; returns records read.

        Drift counters of versions other than the one served are kept as they were: only the
        model that served a prediction knows its training bins.
        """
        old = {(r.model_version, r.day): r.counters for r in self.store.aggregates()}
        fresh, count = recompute_aggregates(self._all_records(page_size), self.model)
        for key, counters in fresh.items():
            if key[0] != self.model.version:
                counters.update({k: v for k, v in old.get(key, {}).items() if k.startswith("f|")})
        for key, counters in old.items():
            if key[0] != self.model.version and key not in fresh:
                kept = {k: v for k, v in counters.items() if k.startswith("f|")}
                if kept:
                    fresh[key] = kept
        self.store.replace_aggregates([AggregateRow(v, d, c) for (v, d), c in sorted(fresh.items())])
        return count

    def _all_records(self, page_size: int) -> Iterable[PredictionRecord]:
        cursor = None
        while True:
            page = self.store.list(page_size, cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def list(self, limit: int = 100, cursor: str | None = None) -> Page:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest([FieldError("limit", f"must be an integer from 1 to {MAX_LIST_LIMIT}")])
        return self.store.list(limit, cursor)


def _same_json(a: Any, b: Any) -> bool:
    try:
        return canonical_json(a) == canonical_json(b)
    except (TypeError, ValueError):
        return False


def item_field(index: int) -> str:
    """How the API names item `index` of a batch: `observations[3]`."""
    return f"observations[{index}]"


def item_field_prefix(index: int) -> str:
    """How the API names the fields of item `index` of a batch: `observations[3].`."""
    return item_field(index) + "."


def _observation_prefix(index: int) -> str:
    return f"{item_field_prefix(index)}observation."


def _single_observation_prefix(index: int) -> str:
    return "observation."


def _item_of(error: FieldError, as_batch: bool) -> int:
    # The item an error of predict_many names, from the prefix it was given.
    return int(error.field[len("observations["):error.field.index("]")]) if as_batch else 0


def _field(error: FieldError) -> str:
    return error.field


def run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits (one on `DirectWrites`), without an event
    loop: so the synchronous forms work in a notebook too, whose loop is already running."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the coroutine waited: only one that never waits can be run to its end here")


class DirectWrites:
    """Scoring and the store write in the caller's thread: the default, for notebooks, tests
    and commands. Servers choose theirs in the composition root (adapters/writes.py)."""

    def __init__(self, store: PredictionStore) -> None:
        self.store = store

    async def score(self, work: Callable[[], T]) -> T:
        return work()

    async def record_many(
        self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]]
    ) -> list[tuple[PredictionRecord, bool]]:
        return self.store.record_many(records, counters)


def recompute_aggregates(
    records: Iterable[PredictionRecord], model: Model
) -> tuple[dict[tuple[str, str], dict[str, float]], int]:
    """Aggregates from scratch: what every record's prediction and outcome added, the
    challengers' scores included (core.shadows).

    Drift counters are recomputed for `model`'s version only (see `repair_aggregates`).
    """
    rows: dict[tuple[str, str], dict[str, float]] = {}
    count = 0
    for r in records:
        count += 1
        counters = rows.setdefault((r.model_version, r.created_at.date().isoformat()), {})
        increments = quality.prediction_increments(model.schema, r.observation, r.proba, r.predicted_class)
        if r.model_version != model.version:
            increments = {k: v for k, v in increments.items() if not k.startswith("f|")}
        quality.add(counters, increments)
        quality.add(counters, shadows.prediction_counters(r))
        if r.true_class is not None:
            quality.add(counters, shadows.outcome_counters(replace(r, true_class=None), r.true_class))
    return rows, count
