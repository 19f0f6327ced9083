"""Recompute the quality aggregates from the stored records: `python -m adapters.repair_aggregates`.

Reads the same environment as the service (STORE_URL, MODEL_DIR, AWS_REGION,
AWS_ENDPOINT_URL_DYNAMODB...), pages through every stored prediction, recomputes what each one
and its outcome add to the aggregates, and replaces the stored aggregates with the result.

Use it after a store was written by a version of the service that kept no aggregates, or
whenever /stats and the raw records disagree. Run it while the service is stopped or idle: a
prediction or outcome written while it pages through the records may be counted twice or lost
(run it again to fix that). Drift counters are recomputed for the model in MODEL_DIR only;
other versions keep theirs. On DynamoDB the records are read from the listing index, which may
lag the latest writes by a moment.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import IO

from adapters.bootstrap import build_service
from adapters.settings import Settings
from core.cli import OneLineParser
from core.errors import ModelError, StorageError
from core.ports import AggregateRow, OutcomeCounters, PredictionStore
from core.records import Page, PredictionId, PredictionRecord
from core.service import PredictionService


class ProgressStore:
    """A PredictionStore that reports on `stream` how many records were listed so far."""

    def __init__(self, store: PredictionStore, stream: IO[str]) -> None:
        self.store = store
        self.stream = stream
        self.read = 0
        self._interactive = stream.isatty()
        self._reported = 0

    def record(
        self, record: PredictionRecord, counters: Mapping[str, float] | None = None
    ) -> tuple[PredictionRecord, bool]:
        return self.store.record(record, counters)

    def record_many(
        self, records: Sequence[PredictionRecord], counters: Sequence[Mapping[str, float]] | None = None
    ) -> list[tuple[PredictionRecord, bool]]:
        return self.store.record_many(records, counters)

    def set_outcome(
        self, prediction_id: PredictionId, true_class: int, now: datetime, counters: OutcomeCounters | None = None
    ) -> PredictionRecord:
        return self.store.set_outcome(prediction_id, true_class, now, counters)

    def aggregates(
        self,
        model_version: str | None = None,
        since: date | None = None,
        until: date | None = None,
        names: Collection[str] | None = None,
    ) -> list[AggregateRow]:
        return self.store.aggregates(model_version, since, until, names)

    def aggregate_totals(
        self, model_version: str | None = None, since: date | None = None, until: date | None = None
    ) -> dict[str, dict[str, float]]:
        return self.store.aggregate_totals(model_version, since, until)

    def replace_aggregates(self, rows: Sequence[AggregateRow]) -> None:
        self.store.replace_aggregates(rows)

    def get(self, prediction_id: PredictionId) -> PredictionRecord:
        return self.store.get(prediction_id)

    def check(self) -> None:
        self.store.check()

    def list(self, limit: int, cursor: str | None = None) -> Page:
        page = self.store.list(limit, cursor)
        self.read += len(page.items)
        if self._interactive:
            self.stream.write(f"\rread {self.read:,} records")
        elif self.read - self._reported >= 10_000 or page.next_cursor is None:
            # Logs get a line now and then rather than one carriage-return line per page.
            self.stream.write(f"read {self.read:,} records\n")
            self._reported = self.read
        if page.next_cursor is None and self._interactive:
            self.stream.write("\n")
        self.stream.flush()
        return page


def main(argv: Sequence[str], environ: Mapping[str, str], stdout: IO[str], stderr: IO[str]) -> int:
    parser = OneLineParser(
        prog="python -m adapters.repair_aggregates",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--page-size", type=int, default=1000, help="records read per page (default 1000)")
    args = parser.parse_args(argv)
    if not 1 <= args.page_size <= 1000:
        parser.error("--page-size must be from 1 to 1000")
    try:
        settings = Settings.from_env(environ)
        service = build_service(settings)
    except (ValueError, ModelError) as e:
        print(f"error: {e}", file=stderr)
        return 2
    progress = ProgressStore(service.store, stderr)
    repair = PredictionService(service.model, progress, service.clock)
    try:
        progress.check()
        count = repair.repair_aggregates(page_size=args.page_size)
        rows = service.store.aggregates()
    except StorageError as e:
        print(f"{chr(10) if progress.read and stderr.isatty() else ''}error: {e}", file=stderr)
        return 1
    versions = sorted({row.model_version for row in rows})
    print(
        f"read {count} records; the aggregates now hold {len(rows)} rows (version and day)"
        f" of {len(versions)} model version(s)",
        file=stdout,
    )
    return 0


def run() -> int:
    """The command line's entry point (`python -m adapters.repair_aggregates`, `sklearn-serve-repair`)."""
    return main(sys.argv[1:], os.environ, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(run())
