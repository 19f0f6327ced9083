"""Schemathesis against the app's own /openapi.json, served by a real uvicorn on 127.0.0.1.

Every check schemathesis has (`--checks all`: no 5xx, responses fit the documented schemas,
statuses and content types are documented, invalid data is refused, auth is not ignored...) over
all four phases (examples, coverage, fuzzing, stateful), with and without API_KEY. The one
exception is `positive_data_acceptance` on the listing, /predict and /stats, which would flag every
made-up `cursor` (opaque by design), every batch repeating an id with another observation and
`since` after `until` (documented, but beyond JSON Schema); fuzz_hooks.py checks those three
operations narrowly instead.
The server's own log is read afterwards too: no request may have been answered with a 5xx or
logged an internal error.

Reproduce one run by hand: start `uvicorn adapters.asgi:app --port 8765`, then
`schemathesis --config-file <the config below> run http://127.0.0.1:8765/openapi.json --checks all
--max-examples 50 --seed 1`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import README_PASSENGER
from tests.reliability.support import BIN, ROOT, SOAK, record_figures, scaled, uvicorn

pytestmark = pytest.mark.slow

KEY = "fuzz-key-0f8e9d7c6b5a4f3e2d1c"
HOOKS = Path(__file__).with_name("fuzz_hooks.py")
# A fixed seed keeps `make test` repeatable; `make soak` draws a new one (FUZZ_SEED picks one).
SEED = os.environ.get("FUZZ_SEED") or ("" if SOAK else "20261125")
MAX_EXAMPLES = scaled(30, 500)
RUN_TIMEOUT = scaled(150, 1500)

CONFIG = f"""
hooks = "{HOOKS}"

[checks]
enabled = true

[[operations]]
include-operation-id = ["listPredictions", "predict", "stats"]
checks.positive_data_acceptance.enabled = false
"""


def run_schemathesis(base_url: str, tmp_path: Path, headers: dict[str, str]) -> tuple[int, str]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    command = [
        str(BIN / "schemathesis"), "--config-file", str(config), "--no-color",
        "run", f"{base_url}/openapi.json",
        "--max-examples", str(MAX_EXAMPLES),
        "--workers", "1",
        "--request-timeout", "20",
        "--generation-database", "none",
        "--suppress-health-check", "all",
        *(["--seed", SEED] if SEED else []),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
        # The hooks compare observations with the service's own core.records.canonical_json.
        env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)},
    )
    return done.returncode, done.stdout + done.stderr


def logged_statuses(server_log: str) -> list[int]:
    """The status of every request, from the service's one JSON access line per request."""
    statuses = []
    for line in server_log.splitlines():
        if not line.startswith("{"):
            continue  # uvicorn's own lines
        fields = json.loads(line)
        if fields["logger"] == "sklearn_serve.http" and "status" in fields:
            statuses.append(int(fields["status"]))
    return statuses


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param({}, id="without-api-key"),
        pytest.param({"API_KEY": KEY}, id="with-api-key"),
        pytest.param({"API_KEY": KEY, "PREDICT_REQUIRES_KEY": "true"}, id="with-api-key-on-predict-too"),
    ],
)
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(tmp_path: Path, auth: dict[str, str]) -> None:
    env = {"STORE_URL": f"sqlite:///{tmp_path / 'fuzz.db'}", "MAX_BATCH": "5", **auth}
    headers = {"Authorization": f"Bearer {KEY}"} if auth else {}
    with uvicorn(env, tmp_path / "server.log") as server:
        code, output = run_schemathesis(server.base_url, tmp_path, headers)
        server_log = server.process.output()

    generated = re.search(r"(\d+) generated", output)
    statuses = logged_statuses(server_log)
    record_figures(
        "fuzz",
        variant="+".join(sorted(auth)) or "no API_KEY",
        test_cases=int(generated.group(1)) if generated else None,
        requests=len(statuses),
        server_errors=sum(s >= 500 for s in statuses),
        exit_code=code,
        seed=SEED or re.search(r"Seed: (\d+)", output) and re.search(r"Seed: (\d+)", output).group(1),  # type: ignore[union-attr]
    )
    assert code == 0, output[-20000:]
    assert "No issues found" in output or re.search(r"\b0 failures?\b|\bpassed\b", output), output[-5000:]
    assert statuses, "the server logged no request"
    assert not [s for s in statuses if s >= 500], server_log[-5000:]
    for marker in ("internal_error", "unhandled_error", "Traceback"):
        assert marker not in server_log, server_log[-5000:]
    if auth:
        assert KEY not in server_log


def test_the_document_says_that_strict_requests_refuse_extra_observation_keys() -> None:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012
    from starlette.testclient import TestClient

    from adapters.bootstrap import create_app
    from adapters.settings import Settings

    client = TestClient(create_app(Settings(store_url="memory://")))
    document = client.get("/openapi.json").json()
    registry = Registry().with_resource("urn:doc", Resource.from_contents(document, default_specification=DRAFT202012))
    validator = jsonschema.Draft202012Validator({"$ref": "urn:doc#/components/schemas/PredictRequest"},
                                                registry=registry)
    passenger = dict(README_PASSENGER)
    extra = {**passenger, "Name": "x"}
    refused = [
        {"id": 1, "observation": extra, "strict": True},
        {"observations": [{"id": 2, "observation": passenger}, {"id": 3, "observation": extra}], "strict": True},
    ]
    accepted = [
        {"id": 4, "observation": extra},
        {"id": 5, "observation": extra, "strict": False},
        {"observations": [{"id": 6, "observation": extra}]},
        {"id": 7, "observation": passenger, "strict": True},
    ]

    for body in refused:
        assert client.post("/predict", json=body).status_code == 422
        assert not validator.is_valid(body), f"the document accepts a request the app refuses: {body}"
    for body in accepted:
        assert client.post("/predict", json=body).status_code == 200
        assert validator.is_valid(body), f"the document refuses a request the app accepts: {body}"
