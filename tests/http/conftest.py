"""An app per test, through the real composition: settings -> service -> Starlette app -> TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.http import build_app
from adapters.settings import Settings
from adapters.storage.memory import MemoryStore
from core.model import Model, load_model
from core.ports import PredictionStore
from core.service import PredictionService

MakeClient = Callable[..., TestClient]


class TickingClock:
    """A clock that moves one second per call, so listings have a definite newest-first order."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(scope="session")
def model() -> Model:
    return load_model()


@pytest.fixture
def make_client(model: Model) -> Iterator[MakeClient]:
    """`make_client(store=None, **settings)`: a client of a fresh app (MemoryStore unless given)."""
    clients: list[TestClient] = []

    def make(store: PredictionStore | None = None, **settings: Any) -> TestClient:
        configured = Settings(store_url="memory://", **settings)
        service = PredictionService(model, store if store is not None else MemoryStore(), TickingClock(),
                                    max_string_length=configured.max_string_length)
        # raise_server_exceptions=False: a 500 must be answered by the app itself, as in production.
        client = TestClient(build_app(service, configured), raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()
