"""DynamoDB (moto's server, a process of its own on 127.0.0.1) going away under load, and coming back.

uvicorn (2 workers) serves STORE_URL=dynamodb://TABLE at AWS_ENDPOINT_URL_DYNAMODB with fake
credentials, under the concurrent load of load.py. Mid-load moto is killed: every request is then
answered 503 store-unavailable as a problem, within seconds, and none with a 500. moto is started
again on the same port (its state died with it, so the table is created again with
`python -m adapters.storage.dynamodb create-table`), and the same service process answers 200
again without a restart; every item in the table is a whole prediction.

A second check stops moto with SIGSTOP instead (the endpoint accepts connections but never
answers), which is where timeouts matter, and keeps its state: a batch that got 503 is then stored
whole or not at all, and every acknowledged prediction is there.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from starlette.testclient import TestClient

from adapters.storage import DynamoStore
from core.model import load_model
from core.records import id_key
from core.service import PredictionService
from tests.helpers import README_PASSENGER, app_client, serving_service
from tests.reliability.load import Load, Sent, Totals, check_answers
from tests.reliability.support import (
    FAKE_AWS,
    FaultyProxy,
    Process,
    Server,
    create_table,
    free_port,
    record_figures,
    scaled,
    start_moto,
    uvicorn,
)

CLIENTS = 16
# moto copies the whole table for every transaction, so it slows down as the table grows: the soak
# runs the outage longer, not the load bigger.
OUTAGE_SECONDS = scaled(3.0, 15.0)
ACKS_BEFORE_OUTAGE = scaled(60, 150)
# Every answer during an outage comes within this: a refused connection is reported at once,
# a silent endpoint after botocore's timeouts and retries (DynamoStore: 3 tries of 2 s).
KILLED_ANSWER_SECONDS = 5.0
SILENT_ANSWER_SECONDS = 15.0
ITEM_ATTRIBUTES = {"pk", "observation", "proba", "predicted_class", "threshold", "model_version", "warnings",
                   "created_at", "updated_at", "day", "day_sort"}


def table_items(endpoint: str, table: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=FAKE_AWS["AWS_REGION"],
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    for _ in range(1000):
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raise AssertionError("the scan does not end")


def incomplete(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items that are not a whole prediction (keys starting with "#" are the store's own items, never ids)."""
    return [item for item in items if not item["pk"]["S"].startswith("#") and not ITEM_ATTRIBUTES <= set(item)]


class Outage:
    """Runs a load against `server` and cuts `moto` off once enough answers came back."""

    def __init__(self, server: Server, seed: int) -> None:
        self.server = server
        self.stop = threading.Event()
        self.cut = threading.Event()
        self.cut_at = 0.0
        self.acks = 0
        self._lock = threading.Lock()
        self.load = Load(server.port, CLIENTS, rounds=100_000, seed=seed, timeout=60, stop=self.stop,
                         on_answer=self._count)
        self.thread = threading.Thread(target=self.load.run, kwargs={"join_timeout": 300}, daemon=True)

    def _count(self, sent: Sent) -> None:
        if sent.status == 200:
            with self._lock:
                self.acks += 1

    def run(self, cut: Any, after_acks: int = ACKS_BEFORE_OUTAGE, outage_seconds: float = OUTAGE_SECONDS) -> Totals:
        self.thread.start()
        try:
            deadline = time.monotonic() + 60
            while self.acks < after_acks and time.monotonic() < deadline:
                time.sleep(0.01)
            assert self.acks >= after_acks, "the service did not answer before the outage"
            self.cut_at = time.monotonic()
            cut()
            time.sleep(outage_seconds)
        finally:
            self.stop.set()
            self.thread.join(120)
        assert not self.thread.is_alive()
        return self.load.totals

    def during(self, totals: Totals) -> list[Sent]:
        """Requests sent after the cut."""
        return [s for s in totals.sent if s.started >= self.cut_at]


def assert_outage_answers(totals: Totals, during: list[Sent], longest: float) -> None:
    assert not totals.unanswered, [s.error for s in totals.unanswered][:3]
    assert not [s for s in totals.sent if s.status is not None and s.status >= 500 and s.status != 503]
    assert during, "no request was sent during the outage"
    assert all(s.status is not None for s in during), [s.error for s in during if s.status is None][:3]
    assert {s.status for s in during} <= {503, 200, 409}, {s.status for s in during}
    unavailable = [s for s in during if s.status == 503]
    assert unavailable, "no request saw the outage"
    for s in unavailable:
        assert s.body["type"] == "https://errors.sklearn-serve.dev/store-unavailable", s.body
        assert {"title", "status", "detail"} <= set(s.body)
    assert max(s.elapsed for s in during) < longest, max(s.elapsed for s in during)


def health(server: Server) -> int:
    client = server.client(timeout=30)
    try:
        return client.request("GET", "/health").status
    finally:
        client.close()


def wait_for_health(server: Server, status: int, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if health(server) == status:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"/health did not turn {status} within {timeout} s")


@pytest.mark.slow
def test_a_killed_dynamodb_is_503_within_seconds_and_the_service_recovers_without_a_restart(tmp_path: Path) -> None:
    port = free_port()
    endpoint, table = f"http://127.0.0.1:{port}", f"outage-{uuid.uuid4().hex[:8]}"
    moto: Process | None = start_moto(port, tmp_path / "moto.log")
    try:
        create_table(table, endpoint, tmp_path / "create-table.log")
        env = {"STORE_URL": f"dynamodb://{table}", "AWS_ENDPOINT_URL_DYNAMODB": endpoint}
        with uvicorn(env, tmp_path / "server.log", workers=2) as server:
            outage = Outage(server, seed=7)
            killed = moto
            totals = outage.run(cut=killed.kill9)
            moto = None
            during = outage.during(totals)
            assert_outage_answers(totals, during, KILLED_ANSWER_SECONDS)
            assert health(server) == 503
            assert check_answers(Totals([s for s in totals.sent if s.status != 503])) == []

            moto = start_moto(port, tmp_path / "moto-again.log")
            create_table(table, endpoint, tmp_path / "create-table.log")
            recovered_in = wait_for_health(server, 200)
            after = Load(server.port, CLIENTS, scaled(5, 10), seed=8).run()
            refused = [s for s in totals.sent if s.status == 503 and s.kind in ("new", "batch")]
            retried = Totals()
            client = server.client(timeout=30)
            for s in refused[:scaled(20, 50)]:
                payload = ({"observations": [{"id": i, "observation": o} for i, o in s.items]}
                           if s.kind == "batch" else {"id": s.items[0][0], "observation": s.items[0][1]})
                reply = client.request("POST", "/predict", payload)
                retried.sent.append(Sent(0, s.kind, s.path, s.items, None, reply.status, reply.json(), 0, 0))
            listed = client.request("GET", "/predictions?limit=1000").json()["predictions"]
            client.close()
            log = server.process.output()
        items = table_items(endpoint, table)
        moto_failures = moto.output().count('" 500 -')
    finally:
        if moto is not None:
            moto.stop()

    statuses_after = after.statuses()
    unavailable_after = [s for s in after.sent + retried.sent if s.status == 503]
    record_figures(
        "dynamodb-killed", clients=CLIENTS, requests_before_and_during=len(totals.sent),
        requests_during_outage=len(during), answered_503=sum(s.status == 503 for s in during),
        answered_5xx_but_503=sum(s.status is not None and s.status >= 500 and s.status != 503 for s in totals.sent),
        slowest_answer_during_outage_s=round(max(s.elapsed for s in during), 2),
        health_200_again_after_s=round(recovered_in, 1), requests_after=len(after.sent),
        statuses_after=statuses_after, retried_after_503=len(retried.sent), moto_internal_errors=moto_failures,
        incomplete_items=len(incomplete(items)), listed_after_recovery=len(listed),
        stored_after_recovery=sum(not item["pk"]["S"].startswith("#") for item in items),
    )
    # Were moto's server to fail a request itself (a 500 of its own), the service would rightly answer 503.
    assert set(statuses_after) <= {200, 409, 503}, statuses_after
    assert len(unavailable_after) <= moto_failures, (len(unavailable_after), moto_failures)
    assert statuses_after.get(200, 0) > len(after.sent) // 2
    assert check_answers(Totals([s for s in after.sent if s.status != 503])) == []
    assert all(s.status == 200 for s in retried.sent if s.status != 503)
    assert incomplete(items) == []
    stored = {item["pk"]["S"] for item in items if not item["pk"]["S"].startswith("#")}
    acknowledged_after = set(after.acknowledged()) | set(retried.acknowledged())
    assert acknowledged_after <= stored
    assert "unhandled_error" not in log and "Traceback" not in log


@pytest.mark.slow
def test_a_silent_dynamodb_is_503_within_the_timeouts_and_nothing_is_half_written(tmp_path: Path) -> None:
    port = free_port()
    endpoint, table = f"http://127.0.0.1:{port}", f"silent-{uuid.uuid4().hex[:8]}"
    moto = start_moto(port, tmp_path / "moto.log")
    try:
        create_table(table, endpoint, tmp_path / "create-table.log")
        env = {"STORE_URL": f"dynamodb://{table}", "AWS_ENDPOINT_URL_DYNAMODB": endpoint}
        with uvicorn(env, tmp_path / "server.log", workers=2) as server:
            outage = Outage(server, seed=9)
            totals = outage.run(cut=lambda: moto.signal_group(signal.SIGSTOP), outage_seconds=OUTAGE_SECONDS + 6)
            moto.signal_group(signal.SIGCONT)
            during = outage.during(totals)
            recovered_in = wait_for_health(server, 200)
            log = server.process.output()
        time.sleep(1)  # requests moto had queued while stopped are answered now
        items = table_items(endpoint, table)
    finally:
        moto.signal_group(signal.SIGCONT)
        moto.stop()

    stored = {item["pk"]["S"] for item in items if not item["pk"]["S"].startswith("#")}
    acknowledged = totals.acknowledged()
    torn = [
        s.items for s in totals.sent
        if s.kind == "batch" and s.status != 200
        and 0 < sum(id_key(i) in stored for i, _ in s.items) < len(s.items)
    ]
    record_figures(
        "dynamodb-silent", clients=CLIENTS, requests=len(totals.sent), requests_during_outage=len(during),
        answered_503=sum(s.status == 503 for s in during), answered_500=sum(s.status == 500 for s in totals.sent),
        slowest_answer_during_outage_s=round(max(s.elapsed for s in during), 2),
        health_200_again_after_s=round(recovered_in, 1), acknowledged_records=len(acknowledged),
        records_lost=len(set(acknowledged) - stored), torn_batches=len(torn), incomplete_items=len(incomplete(items)),
    )
    assert_outage_answers(totals, during, SILENT_ANSWER_SECONDS)
    assert set(acknowledged) <= stored, "an acknowledged prediction is missing"
    assert torn == []
    assert incomplete(items) == []
    assert "unhandled_error" not in log and "Traceback" not in log




def moto_url(server: ThreadedMotoServer) -> str:
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


@pytest.fixture
def behind_a_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, FaultyProxy]]:
    """The app on a DynamoDB (moto's server, in-process) reached through a proxy that can reset connections."""
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    proxy = FaultyProxy(moto.get_host_and_port()[1])
    try:
        table = f"reset-{uuid.uuid4().hex[:8]}"
        # Created straight on moto with the default timeouts: a CreateTable slower than the short
        # read timeout below would be sent twice, and the second finds the table there.
        DynamoStore(table, region=FAKE_AWS["AWS_REGION"], endpoint_url=moto_url(moto)).create_table()
        store = DynamoStore(table, region=FAKE_AWS["AWS_REGION"], endpoint_url=f"http://127.0.0.1:{proxy.port}",
                            read_timeout=0.5, max_retries=1)
        with app_client(serving_service(load_model(), store)) as client:
            # Stored before the reset: the outcome update has a record to update, and the store knows today.
            assert client.post("/predict", json={"id": 1, "observation": README_PASSENGER}).status_code == 200
            yield client, proxy
    finally:
        proxy.close()
        moto.stop()


@pytest.mark.parametrize("fault", ["reset", "silent"])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", {"id": 2, "observation": README_PASSENGER}),
        ("/predict", {"observations": [{"id": 3, "observation": README_PASSENGER},
                                       {"id": 4, "observation": README_PASSENGER}]}),
        ("/update", {"id": 1, "true_class": 1}),
    ],
    ids=["record", "record_many", "set_outcome"],
)
def test_a_dynamodb_that_resets_or_hangs_during_a_write_is_a_503_not_a_500(
    behind_a_proxy: tuple[TestClient, FaultyProxy], path: str, body: dict[str, Any], fault: str
) -> None:
    client, proxy = behind_a_proxy
    proxy.fault = fault

    response = client.post(path, json=body)

    assert response.status_code == 503, response.text[:300]
    assert response.json()["type"] == "https://errors.sklearn-serve.dev/store-unavailable"


def test_predictions_stored_after_the_table_is_recreated_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
        table = f"recreated-{uuid.uuid4().hex[:8]}"
        store = DynamoStore(table, region=FAKE_AWS["AWS_REGION"], endpoint_url=endpoint)
        store.create_table()
        service = PredictionService(load_model(), store, lambda: datetime.now(UTC))
        service.predict(1, README_PASSENGER)
        boto3.client("dynamodb", endpoint_url=endpoint, region_name=FAKE_AWS["AWS_REGION"]).delete_table(
            TableName=table)
        store.create_table()

        service.predict(2, README_PASSENGER)

        assert [record.id for record in service.list(10).items] == [2]
    finally:
        moto.stop()
