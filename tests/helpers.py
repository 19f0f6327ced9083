"""What tests of every layer share: the README's passenger, clocks, an app built as a server builds it.

Imported by the tests that use them (fixtures stay in conftest files).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from adapters.http import build_app
from adapters.settings import Settings
from adapters.storage.memory import MemoryStore
from adapters.writes import server_writes
from core.model import Model
from core.ports import PredictionStore
from core.service import PredictionService

# The observation of the README's curl example (the original app's).
README_PASSENGER: dict[str, Any] = {
    "Age": 22.0, "Cabin": None, "Embarked": "S", "Fare": 7.25, "Parch": 0, "Pclass": 3, "Sex": "male", "SibSp": 1,
}
# The body of that example, byte for byte.
README_PREDICT_BODY = (
    b'{"id": 0, "observation": {"Age": 22.0, "Cabin": null, "Embarked": "S", "Fare": 7.25, '
    b'"Parch": 0, "Pclass": 3, "Sex": "male", "SibSp": 1}}'
)
START = datetime(2026, 1, 1, tzinfo=UTC)
# `make_client(store=None, **settings)`, the fixture of tests/http.
MakeClient = Callable[..., TestClient]


class SteppingClock:
    """A UTC clock that moves `step` each time it is read, from `start`: listings get a definite
    newest-first order, and predictions fall on the days a test wants. `now` can be set."""

    def __init__(self, step: timedelta = timedelta(seconds=1), start: datetime = START) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def serving_service(
    model: Model, store: PredictionStore | None = None, clock: SteppingClock | None = None, **options: Any
) -> PredictionService:
    """A service wired as adapters.bootstrap wires a server's: scoring on the event loop where
    the models allow it, SQLite's group commit. `options` go to PredictionService."""
    store = store if store is not None else MemoryStore()
    models = [model, *options.get("challengers", ())]
    return PredictionService(model, store, clock or SteppingClock(), writes=server_writes(store, models), **options)


def app_client(service: PredictionService, raise_server_exceptions: bool = False, **settings: Any) -> TestClient:
    """A client of the app for `service` (settings as keyword arguments, STORE_URL memory://).

    A 500 must be answered by the app itself, as in production: exceptions are not re-raised
    in the test unless asked.
    """
    configured = Settings(**{"store_url": "memory://", **settings})
    app = build_app(service, configured)
    return TestClient(app, raise_server_exceptions=raise_server_exceptions)
