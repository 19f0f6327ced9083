"""What only the DynamoDB store promises: outages reported fast, recovery, tables and batches."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer
from pynamodb.signals import pre_dynamodb_send

from adapters.storage import DynamoStore
from adapters.storage.dynamodb import main
from core.errors import InvalidRequest, StorageError, UnknownPrediction
from core.ports import MAX_BATCH
from tests.storage.records import REGION, T0, fresh_table_name, make_record

pytestmark = pytest.mark.usefixtures("aws_credentials")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mocked_aws() -> Iterator[None]:
    with mock_aws():
        yield


def new_store(**kwargs: Any) -> DynamoStore:
    store = DynamoStore(fresh_table_name(), region=REGION, **kwargs)
    store.create_table()
    return store


@pytest.mark.slow
def test_an_outage_raises_storage_error_quickly_and_the_same_store_recovers_after_it() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    store = new_store(endpoint_url=f"http://{host}:{port}")
    store.record(make_record(1))
    server.stop()

    operations = {
        "record": lambda: store.record(make_record(2)),
        "record_many": lambda: store.record_many([make_record(3), make_record(4)]),
        "set_outcome": lambda: store.set_outcome(1, 1, T0),
        "get": lambda: store.get(1),
        "list": lambda: store.list(10),
        "check": store.check,
    }
    for name, operation in operations.items():
        started = time.monotonic()
        with pytest.raises(StorageError):
            operation()
        assert time.monotonic() - started < 10, name

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        store.create_table()  # a restarted moto server may have forgotten the table
        store.check()
        assert store.record(make_record(2))[0] == make_record(2)
        assert store.get(2) == make_record(2)
    finally:
        server.stop()


def test_a_server_that_never_answers_is_reported_within_the_timeouts() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections queue up but nobody ever reads them
    try:
        store = DynamoStore(
            fresh_table_name(),
            region=REGION,
            endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
            read_timeout=0.3,
            max_retries=1,
        )
        started = time.monotonic()
        with pytest.raises(StorageError):
            store.get(1)
        assert time.monotonic() - started < 5
    finally:
        silent.close()


def test_a_missing_table_raises_storage_error(mocked_aws: None) -> None:
    store = DynamoStore("never-created", region=REGION)

    with pytest.raises(StorageError, match="never-created"):
        store.check()
    with pytest.raises(StorageError):
        store.record(make_record(1))


def test_two_stores_on_different_tables_do_not_share_records(mocked_aws: None) -> None:
    first, second = new_store(), new_store()

    first.record(make_record(1, {"table": 1}))
    second.record(make_record(1, {"table": 2}))

    assert first.get(1).observation == {"table": 1}
    assert second.get(1).observation == {"table": 2}
    assert [r.observation for r in second.list(10).items] == [{"table": 2}]


def test_creating_a_table_that_exists_changes_nothing(mocked_aws: None) -> None:
    store = new_store()
    store.record(make_record(1))

    store.create_table()

    assert store.get(1) == make_record(1)


def test_a_batch_of_the_transaction_limit_is_stored_and_a_bigger_one_is_refused(mocked_aws: None) -> None:
    store = new_store()
    batch = [make_record(i, {"i": i}) for i in range(MAX_BATCH)]

    assert all(created for _, created in store.record_many(batch))

    with pytest.raises(InvalidRequest):
        store.record_many([make_record(f"x{i}") for i in range(MAX_BATCH + 1)])
    with pytest.raises(UnknownPrediction):
        store.get("x0")


def test_listing_a_sparse_history_queries_only_days_that_have_predictions(mocked_aws: None) -> None:
    store = new_store()
    days_ago = [0, 1, 400, 1500]
    for n in days_ago:
        store.record(make_record(n, at=T0 - timedelta(days=n)))
    operations: list[str] = []

    def count(sender: Any, operation_name: str, table_name: str | None, req_uuid: Any) -> None:
        if table_name == store.table_name:
            operations.append(operation_name)

    pre_dynamodb_send.connect(count)
    try:
        first = store.list(2)
        second = store.list(2, first.next_cursor)
    finally:
        pre_dynamodb_send.disconnect(count)

    assert [r.id for r in first.items + second.items] == days_ago
    assert second.next_cursor is None
    # One query per day with predictions that a page reaches, not one per calendar day (~1500).
    assert operations.count("Query") <= 2 * len(days_ago)
    assert operations.count("GetItem") == 2


def test_the_create_table_command_reads_region_and_endpoint_from_the_environment(moto_endpoint: str) -> None:
    name = fresh_table_name()
    environ = {**os.environ, "AWS_REGION": REGION, "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint}

    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "adapters.storage.dynamodb", "create-table", name],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (done.returncode, done.stderr) == (0, "")
    store = DynamoStore(name, region=REGION, endpoint_url=moto_endpoint)
    store.record(make_record(1))
    assert store.get(1) == make_record(1)


def test_the_create_table_command_explains_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], {}) == 2
    assert "usage" in capsys.readouterr().err


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.data


def test_throttling_that_outlasts_the_retries_is_a_storage_error_and_stores_nothing(moto_endpoint: str) -> None:
    """DynamoDB's answer to too many requests, on every call (given in place of moto's server,
    which then never sees the request): botocore's retries, then StorageError; the same store
    works after it."""
    from botocore.awsrequest import AWSResponse

    store = new_store(endpoint_url=moto_endpoint, max_retries=1)
    sent: list[str] = []

    def throttled(request: Any, **kwargs: Any) -> AWSResponse:
        sent.append(request.headers.get("X-Amz-Target", b"").decode())
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Body(body))

    events = store.client.meta.events
    events.register_first("before-send.dynamodb", throttled, unique_id="throttle-all")
    try:
        with pytest.raises(StorageError, match="Rate exceeded|Throttling"):
            store.record(make_record(1))
        with pytest.raises(StorageError):
            store.set_outcome(1, 1, T0)
    finally:
        events.unregister("before-send.dynamodb", unique_id="throttle-all")
    assert len(sent) >= 2 and sent[0] == sent[1], sent  # the first call was tried again
    with pytest.raises(UnknownPrediction):
        store.get(1)
    assert store.record(make_record(1))[1] is True
