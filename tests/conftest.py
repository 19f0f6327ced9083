"""Fixtures shared by every layer's tests: the README's passenger, a real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.postgres_server import PostgresServer, postgres_or_skip

# The body of the README's curl example (the original app's), byte for byte.
README_PREDICT_BODY = (
    b'{"id": 0, "observation": {"Age": 22.0, "Cabin": null, "Embarked": "S", "Fare": 7.25, '
    b'"Parch": 0, "Pclass": 3, "Sex": "male", "SibSp": 1}}'
)


@pytest.fixture
def passenger() -> dict[str, Any]:
    """A valid observation for the shipped Titanic model (a fresh copy per test)."""
    return {"Age": 22.0, "Cabin": None, "Embarked": "S", "Fare": 7.25, "Parch": 0, "Pclass": 3, "Sex": "male",
            "SibSp": 1}


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (skips where there are no server binaries)."""
    server = postgres_or_skip(tmp_path_factory.mktemp("postgres"))
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)
