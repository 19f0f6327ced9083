"""The dashboard in a real headless Chromium, against uvicorn serving a seeded SQLite store.

Chromium is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON
messages ending in a NUL byte on file descriptors 3 and 4), so no websocket client is needed.
Every exception, console error and failed load the page meets is collected, and the page also
lists its own errors in #errors.

`DASHBOARD_SCREENSHOT=docs/dashboard.png pytest tests/http/test_dashboard_browser.py` also saves
the README's screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.storage.sqlite import SqliteStore
from core.model import Model
from core.service import PredictionService
from tests.helpers import SteppingClock
from tests.http.test_stats import by_hand, passengers

CHROMIUM = Path("/usr/bin/chromium")
KEY = "dashboard-Key_0123456789"
TIMEOUT = 30.0
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--remote-debugging-pipe",
]

# Puts the pipe's ends on descriptors 3 and 4, then becomes Chromium (dash cannot name fds over 9).
PLACE_PIPE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], sys.argv[3:])"
)

pytestmark = pytest.mark.slow


class Browser:
    """Headless Chromium and one page in it, driven through the DevTools protocol over a pipe."""

    def __init__(self, profile: Path, log: Path) -> None:
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        # The protocol pipe must be the child's descriptors 3 (it reads) and 4 (it writes).
        command = [sys.executable, "-c", PLACE_PIPE, str(to_browser), str(from_browser), str(CHROMIUM), *FLAGS,
                   f"--user-data-dir={profile}", "about:blank"]
        with log.open("ab") as output:
            self.process = subprocess.Popen(command, pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL,
                                            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable", session=self.session)
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": 1280, "height": 1600, "deviceScaleFactor": 1, "mobile": False}, session=self.session)
        except BaseException:
            self.close()
            raise

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]  # type: ignore[no-any-return]
            if "method" in reply:
                self.events.append(reply)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)  # type: ignore[no-any-return]

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                           session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.send("Page.navigate", {"url": url}, session=self.session)

    def wait_for(self, expression: str, timeout: float = TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page is between documents
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"{expression} was still falsy after {timeout} s; errors: {self.problems()}")

    def problems(self, allowed: tuple[str, ...] = ()) -> list[str]:
        """Exceptions, console errors and error log entries (a failed load, a CSP refusal) so far."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif event["method"] == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                found.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}")
        return [p for p in found if not any(a in p for a in allowed)]

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("Browser.close")
                self.process.wait(timeout=10)
            except (OSError, RuntimeError, TimeoutError, subprocess.TimeoutExpired):
                pass
        # Chromium's helper processes are in its process group: none may stay behind.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        os.close(self._in)
        os.close(self._out)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip("needs Chromium at /usr/bin/chromium (Debian: apt-get install chromium; .ci/run installs it)")
    chromium = Browser(tmp_path / "profile", tmp_path / "chromium.log")
    try:
        yield chromium
    finally:
        chromium.close()


SEEDED = 84


def seeded_database(path: Path, model: Model) -> list[dict[str, Any]]:
    """84 predictions over a week, outcomes for two thirds of them, through the service."""
    # The predictions spread over the week before today, about 12 a day.
    week_ago = datetime.now(UTC).replace(hour=0, minute=30, second=0, microsecond=0) - timedelta(days=7)
    service = PredictionService(model, SqliteStore(str(path)), SteppingClock(timedelta(minutes=66), week_ago))
    people = passengers()
    records = {}
    for k in range(SEEDED):
        observation = dict(people[k % len(people)])
        if observation["Age"] is not None:
            observation["Age"] += k // len(people)
        record, _ = service.predict(k, observation)
        records[k] = record
        if k % 3:
            # Outcomes drawn with the predicted probability (from a fixed seed): a calibrated model's.
            true_class = int(random.Random(k).random() < record.proba)
            records[k] = service.record_outcome(k, true_class)
    return [r.as_json() for r in records.values()]


def post(server: Any, path: str, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    client = server.client()
    try:
        reply = client.request("POST", path, body, headers)
    finally:
        client.close()
    assert reply.status == 200, reply.body
    return reply.json()  # type: ignore[no-any-return]


@pytest.fixture
def seeded_server(tmp_path: Path, model: Model) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    from tests.reliability.support import uvicorn

    records = seeded_database(tmp_path / "predictions.db", model)
    env = {"STORE_URL": f"sqlite:///{tmp_path / 'predictions.db'}"}
    with uvicorn(env, tmp_path / "uvicorn.log") as server:
        # And two through the HTTP API, today.
        for k, true_class in ((100, 1), (101, 0)):
            observation = passengers()[k % 20]
            records.append(post(server, "/predict", {"id": k, "observation": observation}))
            records[-1] = post(server, "/update", {"id": k, "true_class": true_class})
        yield server, records


def test_the_dashboard_draws_the_stored_figures_without_errors(
    browser: Browser, seeded_server: tuple[Any, list[dict[str, Any]]], model: Model
) -> None:
    server, records = seeded_server
    expected = by_hand(records)

    browser.open(server.base_url + "/")
    browser.wait_for("document.body.dataset.state === 'ready' && document.body.dataset.card === 'ready'")

    text = browser.evaluate
    assert text("document.querySelector('#tile-predictions .value').textContent") == str(len(records)) == "86"
    assert text("document.querySelector('#tile-outcomes .value').textContent") == str(expected["labeled"])
    assert text("document.querySelector('#tile-accuracy .value').textContent") == f"{100 * expected['accuracy']:.1f} %"
    cm = expected["confusion_matrix"]
    assert text("document.querySelector('#tile-confusion .value').textContent") == (
        f"{cm['tn']} · {cm['fp']} · {cm['fn']} · {cm['tp']}")
    days = sorted({r["created_at"][:10] for r in records})
    assert len(days) >= 7
    assert text("document.querySelectorAll('#daily-chart svg rect.bar').length") == len(days)
    assert text("document.querySelectorAll('#daily-chart svg circle.accuracy').length") == len(days)
    filled = sum(1 for count in expected["calibration_counts"] if count)
    assert text("document.querySelectorAll('#calibration-chart svg circle').length") == filled
    assert text("document.querySelectorAll('#roc-chart svg polyline').length") == 1
    drift_rows = text("[...document.querySelectorAll('#drift-table tbody tr')].map(r => r.cells[0].textContent)")
    assert drift_rows == model.schema.names
    client = server.client()
    stats = client.request("GET", "/stats").json()
    client.close()
    flagged = [f["feature"] for f in stats["versions"][0]["drift"] if f["flagged"]]
    assert "Embarked" in flagged  # its unseen category "X"
    assert text("[...document.querySelectorAll('#drift-table tr.flagged')].map(r => r.cells[0].textContent)") == flagged
    assert text("document.getElementById('card-version').textContent") == model.version
    assert text("document.getElementById('card-threshold').textContent") == "0.5"
    assert text("document.querySelectorAll('#features tbody tr').length") == len(model.schema.names)
    assert text("document.getElementById('key-form').hidden") is True
    assert text("document.getElementById('errors').children.length") == 0
    assert browser.problems() == []

    if os.environ.get("DASHBOARD_SCREENSHOT"):
        browser.screenshot(Path(os.environ["DASHBOARD_SCREENSHOT"]))


def test_with_an_api_key_the_page_asks_for_it_and_keeps_it_in_the_tab_only(
    browser: Browser, tmp_path: Path, model: Model
) -> None:
    from tests.reliability.support import uvicorn

    seeded_database(tmp_path / "predictions.db", model)
    env = {"STORE_URL": f"sqlite:///{tmp_path / 'predictions.db'}", "API_KEY": KEY}
    with uvicorn(env, tmp_path / "uvicorn.log") as server:
        browser.open(server.base_url + "/")
        browser.wait_for("document.body.dataset.state === 'needs-key' && document.body.dataset.card === 'ready'")
        assert browser.evaluate("document.getElementById('key-form').hidden") is False
        assert browser.evaluate("document.getElementById('figures').hidden") is True
        assert browser.evaluate("document.getElementById('filters').hidden") is True

        browser.evaluate("document.getElementById('key').value = 'wrong-key'; "
                         "document.getElementById('key-form').requestSubmit(); true")
        browser.wait_for("document.getElementById('key-message').textContent.includes('refused')")

        browser.evaluate(f"document.getElementById('key').value = '{KEY}'; "
                         "document.getElementById('key-form').requestSubmit(); true")
        browser.wait_for("document.body.dataset.state === 'ready'")

        assert browser.evaluate("document.querySelector('#tile-predictions .value').textContent") == str(SEEDED)
        assert browser.evaluate("sessionStorage.getItem('sklearn-serve-api-key')") == KEY
        assert browser.evaluate("localStorage.length") == 0
        assert KEY not in browser.evaluate("document.documentElement.outerHTML")
        assert browser.evaluate("document.getElementById('errors').children.length") == 0
        # The only failed loads are /stats refused without the key, then with the wrong one.
        refusals = [p for p in browser.problems() if "401" in p]
        assert len(refusals) == 2 and all("/stats" in p for p in refusals)
        assert browser.problems(allowed=("401",)) == []


def test_the_dashboard_shows_champion_and_challenger_side_by_side(browser: Browser, tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from tests.core.fitting import fit_artifact, make_table
    from tests.reliability.support import Client, uvicorn

    table = make_table(n=300, seed=4)
    champion = fit_artifact(tmp_path / "champion", table=table)
    few = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["Sex", "Pclass"])])
    challenger = fit_artifact(tmp_path / "challenger", make_pipeline(few, LogisticRegression()),
                              table=table[["Sex", "Pclass", "y"]])
    served = make_table(n=120, seed=8)
    rows = served.drop(columns=["y"]).astype(object).where(served.notna(), None).to_dict("records")
    env = {"STORE_URL": f"sqlite:///{tmp_path / 'p.db'}", "MODEL_DIR": str(tmp_path / "champion"),
           "SHADOW_MODEL_DIRS": str(tmp_path / "challenger")}
    with uvicorn(env, tmp_path / "uvicorn.log") as server:
        client = Client(server.port)
        for start in (0, 100):
            batch = [{"id": k, "observation": rows[k]} for k in range(start, min(start + 100, len(rows)))]
            assert client.request("POST", "/predict", {"observations": batch}).status == 200
        for k, y in enumerate(served["y"]):
            assert client.request("POST", "/update", {"id": k, "true_class": int(y)}).status == 200
        comparison = client.request("GET", "/stats").json()["comparison"]
        client.close()

        browser.open(server.base_url + "/")
        browser.wait_for("document.body.dataset.state === 'ready' && document.body.dataset.card === 'ready'")
        text = browser.evaluate
        labels = text("[...document.querySelectorAll('#version option')].map(o => o.textContent)")
        curves = text("document.querySelectorAll('#roc-chart svg polyline').length")
        verdicts = text("[...document.querySelectorAll('#comparison-verdicts li')].map(li => li.textContent)")
        figures = text("[...document.querySelectorAll('#comparison-table tbody tr')].map(r => r.cells[1].textContent)")
        problems = browser.problems()

    assert labels == [f"{champion.version[:12]} (serving)", f"{challenger.version[:12]} (challenger)"]
    assert curves == 2  # the champion's ROC curve and the challenger's, on one chart
    assert figures == ["ROC AUC", "accuracy", "Brier score", "log loss"]
    (verdict,) = verdicts
    assert verdict.startswith(f"Challenger {challenger.version[:12]}")
    said_better = "significantly better" in verdict
    assert said_better is comparison[0]["challenger_better"]
    assert problems == []
