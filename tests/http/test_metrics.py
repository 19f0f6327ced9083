"""GET /metrics: Prometheus counters that add up over every worker process of one server."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import parser
from starlette.testclient import TestClient

from adapters.http import metrics
from adapters.serve import fresh_metrics_directory
from core.model import Model
from tests.helpers import app_client, serving_service
from tests.http.support import assert_documented

KEY = "metrics-Key_0123456789"
REQUESTS = "sklearn_serve_http_requests_total"
LATENCY = "sklearn_serve_http_request_duration_seconds"
PREDICTIONS = "sklearn_serve_predictions_total"
OUTCOMES = "sklearn_serve_outcomes_total"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
MakeMetricsClient = Callable[..., TestClient]


def samples(text: str) -> Samples:
    """Every sample of the exposition, read by the reference parser (prometheus_client's)."""
    found: Samples = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, f"{key} appears twice"
            found[key] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum over the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


@pytest.fixture
def make_metrics_client(model: Model, tmp_path: Path) -> Iterator[MakeMetricsClient]:
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        client = app_client(serving_service(model), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return samples(response.text)


def test_requests_are_counted_by_route_template_method_and_status(
    make_metrics_client: MakeMetricsClient, passenger: dict
) -> None:
    client = make_metrics_client()
    for prediction_id in (1, 2, 1):
        client.post("/predict", json={"id": prediction_id, "observation": passenger})
    client.get("/predictions/1")
    client.get("/predictions/404")
    client.get("/no/such/route")
    client.delete("/predict")
    client.request("BREW", "/predict")

    found = scrape(client)

    assert value(found, REQUESTS, route="/predict", method="POST", status="200") == 3
    assert value(found, REQUESTS, route="/predictions/{id}", method="GET", status="200") == 1
    assert value(found, REQUESTS, route="/predictions/{id}", method="GET", status="404") == 1
    assert value(found, REQUESTS, route="unmatched", method="GET", status="404") == 1
    assert value(found, REQUESTS, route="/predict", method="DELETE", status="405") == 1
    assert value(found, REQUESTS, route="/predict", method="OTHER", status="405") == 1
    assert total(found, REQUESTS) == 8  # the scrape itself is counted once it has been answered
    assert not any("/predictions/1" in str(labels) for _, labels in found)
    assert value(scrape(client), REQUESTS, route="/metrics", method="GET", status="200") == 1


def test_the_latency_histogram_has_every_request_in_cumulative_buckets(
    make_metrics_client: MakeMetricsClient, passenger: dict
) -> None:
    client = make_metrics_client()
    for prediction_id in range(5):
        client.post("/predict", json={"id": prediction_id, "observation": passenger})

    found = scrape(client)

    series = {"route": "/predict", "method": "POST"}
    buckets = sorted(((float(dict(ls)["le"]), v) for (n, ls), v in found.items()
                      if n == LATENCY + "_bucket" and set(series.items()) <= ls))
    assert [le for le, _ in buckets] == [*metrics.LATENCY_BUCKETS, float("inf")]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == 5
    assert value(found, LATENCY + "_count", **series) == 5
    assert 0 < value(found, LATENCY + "_sum", **series) < 5 * 10


def test_predictions_are_counted_once_by_predicted_class(
    make_metrics_client: MakeMetricsClient, passenger: dict
) -> None:
    client = make_metrics_client()
    rich = {**passenger, "Sex": "female", "Pclass": 1, "Fare": 80.0}
    answers = [client.post("/predict", json={"id": "a", "observation": passenger}).json()]
    client.post("/predict", json={"id": "a", "observation": passenger})  # a retry stores nothing
    batch = {"observations": [{"id": "b", "observation": rich}, {"id": "c", "observation": passenger},
                              {"id": "b", "observation": rich}]}  # b repeated: one prediction
    answers += client.post("/predict", json=batch).json()["predictions"][:2]
    client.post("/predict", json={"id": "d", "observation": {"Pclass": "first"}})  # refused, not stored

    found = scrape(client)

    version = answers[0]["model_version"]
    expected = Counter(str(int(a["predicted_class"])) for a in answers)
    assert set(expected) == {"0", "1"}
    for predicted, count in expected.items():
        assert value(found, PREDICTIONS, model_version=version, predicted_class=predicted) == count
    assert total(found, PREDICTIONS) == 3


def test_outcomes_are_counted_with_the_true_and_the_predicted_class(
    make_metrics_client: MakeMetricsClient, passenger: dict
) -> None:
    client = make_metrics_client()
    predicted = str(int(client.post("/predict", json={"id": 7, "observation": passenger}).json()["predicted_class"]))
    client.post("/update", json={"id": 7, "true_class": 1})
    client.post("/update", json={"id": 7, "true_class": False})
    client.post("/update", json={"id": 8, "true_class": 1})  # unknown id: nothing recorded

    found = scrape(client)

    assert value(found, OUTCOMES, true_class="1", predicted_class=predicted) == 1
    assert value(found, OUTCOMES, true_class="0", predicted_class=predicted) == 1
    assert total(found, OUTCOMES) == 2


def test_metrics_are_prometheus_text_open_without_a_key(make_metrics_client: MakeMetricsClient) -> None:
    client = make_metrics_client()
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE sklearn_serve_http_request_duration_seconds histogram" in response.text
    assert_documented(client, "GET", "/metrics", response)
    assert "security" not in client.get("/openapi.json").json()["paths"]["/metrics"]["get"]


def test_metrics_need_the_key_when_one_is_set(make_metrics_client: MakeMetricsClient) -> None:
    # The outcome counts are a confusion matrix: as private as /stats.
    client = make_metrics_client(api_key=KEY)

    refused = client.get("/metrics")
    bearer = client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})

    assert refused.status_code == 401 and bearer.status_code == 200
    assert_documented(client, "GET", "/metrics", refused)
    assert_documented(client, "GET", "/metrics", bearer)
    assert value(samples(bearer.text), REQUESTS, route="/metrics", method="GET", status="401") == 1


def test_each_server_gets_a_fresh_metrics_directory_and_gone_servers_lose_theirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    base = tmp_path / f"sklearn-serve-metrics-{os.getuid()}"
    base.mkdir()
    running, gone, notes = base / str(os.getppid()), base / "4194304", base / "notes"  # 4194304: above Linux's pids
    for directory in (running, gone, notes):
        directory.mkdir()
    (base / str(os.getpid())).mkdir()
    (base / str(os.getpid()) / "counter_1.db").write_bytes(b"a dead server's, under this pid")

    fresh = fresh_metrics_directory(os.getpid())

    assert fresh == base / str(os.getpid()) and list(fresh.iterdir()) == []
    assert running.exists() and notes.exists() and not gone.exists()


BOTH_WORKERS_BOUND = 120.0


def worker_files(directory: Path) -> set[str]:
    """The worker processes that have counted requests in `directory` (prometheus_client's
    multiprocess mode writes a file per metric type and process: `counter_<pid>.db`)."""
    return {p.stem.split("_")[1] for p in directory.glob("counter_*.db")}


@pytest.mark.slow
def test_two_uvicorn_workers_count_every_request_whichever_answers_the_scrape(tmp_path: Path, passenger: dict) -> None:
    from tests.reliability.support import uvicorn

    sent: Counter[tuple[str, str, str]] = Counter()
    classes: Counter[str] = Counter()
    outcomes = 0
    with uvicorn({"STORE_URL": f"sqlite:///{tmp_path / 'predictions.db'}"}, tmp_path / "uvicorn.log",
                 workers=2) as server:
        # adapters.serve made it for this server, named after its pid (uvicorn's supervisor's).
        directory = Path(tempfile.gettempdir()) / f"sklearn-serve-metrics-{os.getuid()}" / str(server.process.pid)
        try:
            # A new connection per request: the kernel hands each to either worker, in an order
            # nobody controls, and the second may still be starting on a loaded machine. So the
            # test goes on until both have answered, for at most BOTH_WORKERS_BOUND seconds: a
            # worker that answers nothing for that long is a failure, not bad luck.
            k = 0
            give_up = time.monotonic() + BOTH_WORKERS_BOUND
            while k < 40 or len(worker_files(directory)) < 2:
                assert time.monotonic() < give_up, f"one worker answered all {k} connections"
                client = server.client(timeout=30)
                headers = {"Connection": "close"}
                reply = client.request("POST", "/predict", {"id": k, "observation": passenger}, headers)
                assert reply.status == 200, reply.body
                sent["/predict", "POST", "200"] += 1
                classes[str(int(reply.json()["predicted_class"]))] += 1
                if k % 3 == 0:
                    reply = client.request("POST", "/update", {"id": k, "true_class": k % 2}, headers)
                    assert reply.status == 200, reply.body
                    sent["/update", "POST", "200"] += 1
                    outcomes += 1
                if k % 5 == 0:
                    reply = client.request("GET", f"/predictions/{k + 1000}", None, headers)
                    assert reply.status == 404
                    sent["/predictions/{id}", "GET", "404"] += 1
                client.close()
                k += 1
            for scrape_number in range(6):
                client = server.client(timeout=30)
                reply = client.request("GET", "/metrics", None, {"Connection": "close"})
                client.close()
                assert reply.status == 200
                found = samples(reply.body.decode())
                for (route, method, status), count in sent.items():
                    assert value(found, REQUESTS, route=route, method=method, status=status) == count, route
                assert value(found, REQUESTS, route="/metrics", method="GET", status="200") == scrape_number
                assert {c: total(found, PREDICTIONS, predicted_class=c) for c in classes} == dict(classes)
                assert total(found, OUTCOMES) == outcomes
            assert len(worker_files(directory)) == 2, "the two workers' counts, and no one else's"
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_a_replaced_worker_loses_no_count(tmp_path: Path, passenger: dict) -> None:
    from tests.reliability.support import uvicorn

    with uvicorn({"STORE_URL": f"sqlite:///{tmp_path / 'predictions.db'}"}, tmp_path / "uvicorn.log",
                 workers=2) as server:
        directory = Path(tempfile.gettempdir()) / f"sklearn-serve-metrics-{os.getuid()}" / str(server.process.pid)
        try:
            give_up = time.monotonic() + BOTH_WORKERS_BOUND
            k = 0
            while len(worker_files(directory)) < 2:  # until both workers have counted something
                assert time.monotonic() < give_up, f"one worker answered all {k} connections"
                client = server.client(timeout=30)
                assert client.request("POST", "/predict", {"id": k, "observation": passenger},
                                      {"Connection": "close"}).status == 200
                client.close()
                k += 1
            before = set(worker_files(directory))
            os.kill(int(min(before)), signal.SIGKILL)  # uvicorn's supervisor starts another worker
            answered = 0
            while answered < 10 or len(worker_files(directory)) < 3:  # ...which counts beside the others
                assert time.monotonic() < give_up, "no replacement worker answered"
                client = server.client(timeout=30)
                try:
                    status = client.request("POST", "/predict", {"id": k, "observation": passenger},
                                            {"Connection": "close"}).status
                except OSError:  # a connection the dying worker had accepted
                    status = 0
                finally:
                    client.close()
                if status == 200:
                    answered += 1
                    k += 1
            client = server.client(timeout=30)
            found = samples(client.request("GET", "/metrics", None, {"Connection": "close"}).body.decode())
            client.close()

            assert value(found, REQUESTS, route="/predict", method="POST", status="200") == k
            assert total(found, PREDICTIONS) == k
            assert before < worker_files(directory), "the killed worker's counts are still there"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
