"""One `store` fixture over every backend, so the contract suite runs unchanged against each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from adapters.storage import DynamoStore, MemoryStore, SqliteStore
from adapters.storage.postgres import PostgresStore
from core.ports import PredictionStore
from tests.storage.records import REGION, fresh_table_name

# For moto's server on a loaded machine: the store's 2 s read timeout and botocore's retries would
# resend a transaction that moto is still applying, and moto, unlike DynamoDB, ignores the
# transaction's idempotency token: the retry then adds the counters twice or reports a conflict.
UNHURRIED: dict[str, Any] = {"read_timeout": 120.0, "max_retries": 0}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free port of 127.0.0.1, shared by the whole session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["memory", "sqlite", "postgres", "dynamodb-moto", "dynamodb-server"])
def store(request: pytest.FixtureRequest, tmp_path: Any, aws_credentials: None) -> Iterator[PredictionStore]:
    kind = request.param
    if kind == "memory":
        yield MemoryStore()
    elif kind == "sqlite":
        sqlite_store = SqliteStore(tmp_path / "predictions.db")
        yield sqlite_store
        sqlite_store.close()
    elif kind == "postgres":
        postgres_store = PostgresStore(request.getfixturevalue("postgres_url"))
        yield postgres_store
        postgres_store.close()
    elif kind == "dynamodb-moto":
        with mock_aws():
            dynamo_store = DynamoStore(fresh_table_name(), region=REGION)
            dynamo_store.create_table()
            yield dynamo_store
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        dynamo_store = DynamoStore(fresh_table_name(), region=REGION, endpoint_url=endpoint, **UNHURRIED)
        dynamo_store.create_table()
        yield dynamo_store
        # moto copies every table of the server for each transaction: keep only live ones.
        dynamo_store.delete_table()
