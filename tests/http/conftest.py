"""An app per test, through the real composition: settings -> service -> Starlette app -> TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.settings import Settings
from core.model import Model, load_model
from core.ports import PredictionStore
from tests.helpers import MakeClient, app_client, serving_service


@pytest.fixture(scope="session")
def model() -> Model:
    return load_model()


@pytest.fixture
def make_client(model: Model) -> Iterator[MakeClient]:
    """`make_client(store=None, **settings)`: a client of a fresh app (MemoryStore unless given)."""
    clients: list[TestClient] = []

    def make(store: PredictionStore | None = None, **settings: Any) -> TestClient:
        max_string_length = Settings(store_url="memory://", **settings).max_string_length
        client = app_client(serving_service(model, store, max_string_length=max_string_length), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()
