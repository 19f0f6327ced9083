"""The API key: refused when missing or wrong in either header, compared in constant time, never logged.

Run in-process (the decision is proven to rest on hmac.compare_digest alone) and through a real
uvicorn at LOG_LEVEL=DEBUG with uvicorn's access log on, whose whole output is searched for the
key and for the wrong keys clients sent (a near-miss is as secret as the key).
"""

from __future__ import annotations

import hmac
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.bootstrap import create_app
from adapters.settings import Settings
from tests.helpers import README_PASSENGER
from tests.reliability.support import (
    ROOT,
    assert_problem,
    free_port,
    record_figures,
    server_env,
    uvicorn,
    uvicorn_command,
)

KEY = "k3y-Of-The-Service_7f1e2d3c4b5a69788796a5b4"
WRONG_KEYS = [
    "wrong",
    KEY[:-1],  # a prefix
    KEY + "x",  # a longer key
    KEY[:-1] + "5",  # same length, last character off
    "x" + KEY[1:],  # same length, first character off
    KEY.upper(),
    KEY.lower(),
]
PROTECTED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/update", {"id": 1, "true_class": 1}),
    ("GET", "/predictions", None),
    ("GET", "/predictions/1", None),
    ("GET", "/list-db-contents", None),
]


def refusals() -> list[tuple[str, dict[str, str]]]:
    """Every way to not present the key: nothing, wrong keys in either header, malformed headers."""
    cases: list[tuple[str, dict[str, str]]] = [
        ("no key", {}),
        ("empty bearer", {"Authorization": "Bearer "}),
        ("basic scheme", {"Authorization": f"Basic {KEY}"}),
        ("key without scheme", {"Authorization": KEY}),
        ("empty x-api-key", {"X-API-Key": ""}),
    ]
    for n, wrong in enumerate(WRONG_KEYS):
        cases.append((f"wrong bearer {n}", {"Authorization": f"Bearer {wrong}"}))
        cases.append((f"wrong x-api-key {n}", {"X-API-Key": wrong}))
    return cases


@pytest.fixture
def locked(caplog: pytest.LogCaptureFixture) -> TestClient:
    caplog.set_level(logging.DEBUG)
    client = TestClient(create_app(Settings(store_url="memory://", api_key=KEY, log_level="DEBUG")),
                        raise_server_exceptions=False)
    assert client.post("/predict", json={"id": 1, "observation": README_PASSENGER}).status_code == 200
    return client


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_protected_routes_refuse_a_missing_or_wrong_key_in_either_header_with_401(
    locked: TestClient, method: str, path: str, body: dict[str, Any] | None, caplog: pytest.LogCaptureFixture
) -> None:
    for name, headers in refusals():
        response = locked.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, name
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/unauthorized")
        assert "WWW-Authenticate" in response.headers
        for wrong in WRONG_KEYS:
            assert wrong not in response.text
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
        assert locked.request(method, path, json=body, headers=headers).status_code == 200
    assert KEY not in caplog.text
    assert not [wrong for wrong in WRONG_KEYS if wrong in caplog.text and wrong != "wrong"]


def test_a_wrong_key_never_updates_an_outcome(locked: TestClient) -> None:
    for _, headers in refusals():
        locked.post("/update", json={"id": 1, "true_class": 1}, headers=headers)

    stored = locked.get("/predictions/1", headers={"X-API-Key": KEY}).json()

    assert stored["true_class"] is None


class CompareDigestSpy:
    def __init__(self, answer: bool | None = None) -> None:
        self.calls: list[tuple[bytes, bytes]] = []
        self.answer = answer
        self.real = hmac.compare_digest

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        return self.real(a, b) if self.answer is None else self.answer


def test_every_presented_key_is_compared_with_hmac_compare_digest(
    locked: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = CompareDigestSpy()
    monkeypatch.setattr(hmac, "compare_digest", spy)

    for wrong in WRONG_KEYS:
        assert locked.get("/predictions", headers={"X-API-Key": wrong}).status_code == 401
    assert locked.get("/predictions", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200

    assert spy.calls == [(wrong.encode(), KEY.encode()) for wrong in WRONG_KEYS] + [(KEY.encode(), KEY.encode())]


@pytest.mark.parametrize("verdict", [False, True])
def test_compare_digest_alone_decides_whether_a_key_is_right(
    locked: TestClient, monkeypatch: pytest.MonkeyPatch, verdict: bool
) -> None:
    """No `==` shortcut before or after it: a forced answer is the answer."""
    monkeypatch.setattr(hmac, "compare_digest", CompareDigestSpy(answer=verdict))

    right = locked.get("/predictions", headers={"X-API-Key": KEY})
    wrong = locked.get("/predictions", headers={"X-API-Key": "wrong"})

    assert (right.status_code, wrong.status_code) == ((200, 200) if verdict else (401, 401))


def test_the_settings_never_show_the_key_when_printed() -> None:
    settings = Settings(store_url="memory://", api_key=KEY)

    assert KEY not in repr(settings)
    assert KEY not in str(settings)


def test_the_key_and_wrong_keys_never_reach_uvicorns_output(tmp_path: Path) -> None:
    env = {"STORE_URL": f"sqlite:///{tmp_path / 'auth.db'}", "API_KEY": KEY, "LOG_LEVEL": "DEBUG"}
    refused = accepted = 0
    with uvicorn(env, tmp_path / "server.log", extra=("--log-level", "debug")) as server:
        client = server.client(timeout=30)
        assert client.request("POST", "/predict", {"id": 1, "observation": README_PASSENGER}).status == 200
        for method, path, body in PROTECTED:
            for _, headers in refusals():
                assert_problem(client.request(method, path, body, headers), 401)
                refused += 1
            for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
                assert client.request(method, path, body, headers).status == 200
                accepted += 1
        client.close()
        output = server.process.output()

    record_figures("auth", refused_401=refused, accepted_with_the_key=accepted, key_in_output=KEY in output,
                   output_bytes=len(output))
    assert '"status":401' in output and "/predictions" in output, "the debug and access logs were not captured"
    assert KEY not in output
    assert not [wrong for wrong in WRONG_KEYS if wrong in output and wrong != "wrong"]


def test_a_refused_api_key_stops_startup_without_printing_the_key(tmp_path: Path) -> None:
    bad_key = KEY + " with a space"
    env = server_env({"API_KEY": bad_key, "STORE_URL": "memory://"})

    done = subprocess.run(uvicorn_command(free_port()), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)

    assert done.returncode != 0
    assert "API_KEY=(hidden): must be printable ASCII without spaces" in done.stderr + done.stdout
    assert KEY not in done.stderr + done.stdout
