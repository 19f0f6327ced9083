"""One `store` fixture over every backend, so the contract suite runs unchanged against each."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from adapters.storage import DynamoStore, MemoryStore, SqliteStore
from adapters.storage.postgres import PostgresStore
from core.ports import PredictionStore
from core.records import PredictionId, PredictionRecord

REGION = "us-east-1"
T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_record(
    prediction_id: PredictionId,
    observation: dict[str, Any] | None = None,
    at: datetime = T0,
    **changes: Any,
) -> PredictionRecord:
    """A stored-looking prediction built by hand, with an explicit clock."""
    fields: dict[str, Any] = {
        "id": prediction_id,
        "observation": {"Age": 29.0, "Sex": "female", "Pclass": 1} if observation is None else observation,
        "proba": 0.8125,
        "predicted_class": True,
        "threshold": 0.5,
        "model_version": "titanic-1",
        "created_at": at,
        "updated_at": at,
    }
    fields.update(changes)
    return PredictionRecord(**fields)


def fresh_table_name() -> str:
    return f"predictions-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, and no profile or config file of the machine running the tests."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)


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
