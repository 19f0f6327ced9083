"""`python -m adapters.repair_aggregates`, run as a process against a SQLite file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from adapters.repair_aggregates import main
from adapters.storage import SqliteStore
from core.model import default_model
from core.ports import AggregateRow
from tests.storage.aggregate_checks import (
    all_records,
    as_rows,
    assert_rows_equal,
    random_mix,
    recomputed,
    stopped_clock,
)

REPO = Path(__file__).resolve().parents[2]


def run(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "adapters.repair_aggregates", *args],
        cwd=REPO,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_recomputes_every_aggregate_of_a_sqlite_store_and_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    store = SqliteStore(path)
    model = default_model()
    random_mix(store, [model], stopped_clock(datetime(2024, 3, 1, 20, tzinfo=UTC)), seed=11, steps=120)
    expected = recomputed(all_records(store), [model])
    store.replace_aggregates([AggregateRow(model.version, "2024-03-01", {"n": 12345, "bogus": 1})])
    store.close()

    done = run({"STORE_URL": f"sqlite:///{path}"}, "--page-size", "7")

    assert done.returncode == 0, done.stderr
    records = len(all_records(store))
    assert f"read {records} records" in done.stdout
    assert f"read {records:,} records" in done.stderr
    assert_rows_equal(as_rows(store.aggregates()), expected)
    store.close()


def test_a_store_that_cannot_be_opened_is_reported_with_exit_status_1(tmp_path: Path) -> None:
    done = run({"STORE_URL": f"sqlite:///{tmp_path}/missing-dir/predictions.db"})

    assert done.returncode == 1
    assert "error:" in done.stderr and "missing-dir" in done.stderr
    assert done.stdout == ""


def test_bad_settings_are_reported_with_exit_status_2() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()

    assert main([], {"STORE_URL": "mysql://nowhere"}, stdout, stderr) == 2

    assert "STORE_URL='mysql://nowhere': not a store URL" in stderr.getvalue()
    assert stdout.getvalue() == ""


def test_progress_goes_to_stderr_one_line_per_ten_thousand_records_when_not_a_terminal(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "predictions.db")
    random_mix(store, [default_model()], stopped_clock(datetime(2024, 3, 1, tzinfo=UTC)), seed=3, steps=10)
    store.close()
    stdout, stderr = io.StringIO(), io.StringIO()

    status = main(["--page-size", "2"], {"STORE_URL": f"sqlite:///{tmp_path}/predictions.db"}, stdout, stderr)

    assert status == 0
    records = len(all_records(store))
    assert stderr.getvalue() == f"read {records} records\n"
    assert stdout.getvalue().startswith(f"read {records} records;")
    store.close()
