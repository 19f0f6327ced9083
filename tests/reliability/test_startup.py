"""A bad setting stops the server once, clearly: before any worker starts, exit status non-zero,
the last line of stderr naming the variable, its value and the fix, and no traceback.

Each case runs the Procfile's web line as Heroku does (bash -c, two workers). Without the check,
uvicorn's supervisor restarted the failing workers forever with a traceback each, or the process
printed one. The bound on each run is generous: the check answers in about a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.support import ROOT, free_port, server_env

STARTUP_BOUND_SECONDS = 120


def run_web_line(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    web = (ROOT / "Procfile").read_text().strip().removeprefix("web:").strip()
    env = server_env({
        "PORT": str(free_port()), "HOST": "127.0.0.1", "STORE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **environ,
    })
    return subprocess.run(["bash", "-c", web], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=STARTUP_BOUND_SECONDS)


def assert_refused_naming(done: subprocess.CompletedProcess[str], variable: str, value: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sklearn-serve: cannot start: {variable}="), last
    assert value in last and "Fix: " in last, last
    # Refused before any worker started: uvicorn never ran.
    assert "Started parent process" not in done.stderr and "Waiting for application startup" not in done.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODEL_DIR", "/nonexistent/model"),
        ("STORE_URL", "postgress://typo/db"),
        ("STORE_URL", "dynamodb://bad table name"),
        ("STORE_URL", "dynamodb://ab"),
        ("MAX_BATCH", "1000"),
        ("MAX_BATCH", "lots"),
        ("MAX_BODY_BYTES", "0"),
        ("WEB_CONCURRENCY", "two"),
        ("WEB_CONCURRENCY", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("PREDICT_REQUIRES_KEY", "perhaps"),
        ("PORT", "http"),
    ],
)
def test_a_bad_setting_stops_the_web_line_at_once_with_one_line(tmp_path: Path, variable: str, value: str) -> None:
    done = run_web_line(tmp_path, **{variable: value})
    assert_refused_naming(done, variable, value)


def test_a_model_whose_files_were_changed_is_refused_naming_model_dir(tmp_path: Path) -> None:
    import shutil

    from core.model import DEFAULT_MODEL_DIR

    copy = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    with (copy / "model.joblib").open("ab") as model_file:
        model_file.write(b"tampered")
    done = run_web_line(tmp_path, MODEL_DIR=str(copy))
    assert_refused_naming(done, "MODEL_DIR", str(copy))
    assert "checksum" in done.stderr or "sha256" in done.stderr


def test_a_store_that_cannot_be_written_stops_the_server(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker / 'predictions.db'}"
    done = run_web_line(tmp_path, STORE_URL=url)
    assert_refused_naming(done, "STORE_URL", url)
    assert "the store failed its check" in done.stderr and "unable to open database file" in done.stderr


def test_the_api_key_is_never_printed_when_it_is_refused(tmp_path: Path) -> None:
    done = run_web_line(tmp_path, API_KEY="secret value")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "secret value" not in done.stderr + done.stdout
    assert done.stderr.strip().splitlines()[-1].startswith("sklearn-serve: cannot start: API_KEY=(hidden)")


def test_a_worker_that_still_fails_stops_uvicorns_supervisor_instead_of_being_restarted(tmp_path: Path) -> None:
    """Plain `uvicorn --workers 2`, which skips adapters.serve's check: each worker reports the
    setting in one line and exits with uvicorn's startup-failure status, so the supervisor stops
    (with status 0: uvicorn's choice; adapters.serve is what exits non-zero)."""
    env = server_env({"MODEL_DIR": "/nonexistent/model"})
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "adapters.asgi:app", "--workers", "2", "--host", "127.0.0.1",
         "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=STARTUP_BOUND_SECONDS,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "sklearn-serve: cannot start: MODEL_DIR='/nonexistent/model'" in done.stderr
    assert "failed to start, stopping the parent process" in done.stderr
    assert "died" not in done.stderr  # never restarted
