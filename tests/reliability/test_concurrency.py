"""Two uvicorn workers on one SQLite file under 32 concurrent clients: nothing lost, nothing doubled.

The clients send new predictions, batches, exact retries, conflicting duplicates, outcome updates
and ids they all contest (see load.py). Afterwards the SQLite file is read directly: every
acknowledged prediction is stored exactly once and as acknowledged, nothing else is stored,
retries answered the stored record, conflicts got 409, and no request got a 5xx.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime
from pathlib import Path

import pytest

from adapters.storage import SqliteStore
from core.model import load_model
from core.records import canonical_json
from tests.reliability.load import Load, check_answers, check_retries
from tests.reliability.support import record_figures, scaled, sqlite_integrity, sqlite_rows, uvicorn
from tests.storage.aggregate_checks import assert_aggregates_match_records

pytestmark = pytest.mark.slow

CLIENTS = 32
ROUNDS = scaled(60, 400)


def test_two_workers_on_one_sqlite_file_store_every_acknowledged_prediction_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with uvicorn({"STORE_URL": f"sqlite:///{path}"}, tmp_path / "server.log", workers=2) as server:
        started = time.monotonic()
        totals = Load(server.port, CLIENTS, ROUNDS, seed=1).run()
        elapsed = time.monotonic() - started
        server_log = server.process.output()
        rows = sqlite_rows(path)

    acknowledged = totals.acknowledged()
    statuses = totals.statuses()
    lost = [key for key in acknowledged if key not in rows]
    record_figures(
        "concurrency", workers=2, clients=CLIENTS, requests=len(totals.sent), statuses=statuses,
        acknowledged_records=len(acknowledged), stored_rows=len(rows), records_lost=len(lost),
        seconds=round(elapsed, 1), requests_per_second=round(len(totals.sent) / elapsed),
    )
    assert not totals.unanswered, totals.unanswered[:3]
    assert not [s for s in statuses if s is not None and s >= 500], statuses
    assert check_answers(totals) == []
    assert check_retries(totals) == []
    assert statuses.get(409, 0) > 0 and statuses.get(200, 0) > 0
    assert lost == []
    assert set(rows) == set(acknowledged), "a row was stored that no answer acknowledged"
    for key, record in acknowledged.items():
        row = rows[key]
        assert row["observation"] == canonical_json(record["observation"]), key
        assert row["proba"] == record["proba"]
        assert row["true_class"] == record["true_class"]
        assert json.loads(row["warnings"]) == record["warnings"]
        assert datetime.fromisoformat(row["created_at"]) == datetime.fromisoformat(record["created_at"])
        assert datetime.fromisoformat(row["updated_at"]) == datetime.fromisoformat(record["updated_at"])
    assert sqlite_integrity(path) == "ok"
    assert "Traceback" not in server_log
    # Each write's quality counters went into the same transaction as its records.
    store = SqliteStore(path)
    try:
        assert_aggregates_match_records(store, [load_model()])
    finally:
        store.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_keep_alive_requests_are_answered_without_waiting_for_a_delayed_ack(tmp_path: Path, workers: int) -> None:
    with uvicorn({"STORE_URL": "memory://"}, tmp_path / "server.log", workers=workers) as server:
        client = server.client(timeout=10)
        client.request("GET", "/health")
        seconds = []
        for _ in range(20):
            started = time.perf_counter()
            assert client.request("GET", "/health").status == 200
            seconds.append(time.perf_counter() - started)
        client.close()

    record_figures("keep-alive", workers=workers, median_ms=round(statistics.median(seconds) * 1000, 1))
    assert statistics.median(seconds) < 0.015
