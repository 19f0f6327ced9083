"""STORE_URL parsing: each accepted form gives its store, anything else a clear ValueError."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.storage import DynamoStore, MemoryStore, SqliteStore, open_store
from adapters.storage.base import StoreOptions


def test_memory_url_gives_a_memory_store() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_sqlite_url_with_three_slashes_is_a_path_relative_to_the_working_directory() -> None:
    store = open_store("sqlite:///data/predictions.db")

    assert isinstance(store, SqliteStore)
    assert store.path == "data/predictions.db"


def test_sqlite_url_with_four_slashes_is_an_absolute_path(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/predictions.db")

    assert isinstance(store, SqliteStore)
    assert store.path == f"{tmp_path}/predictions.db"
    store.check()
    assert (tmp_path / "predictions.db").exists()


def test_dynamodb_url_names_the_table_and_takes_region_and_endpoint_as_options() -> None:
    options = StoreOptions(aws_region="eu-west-3", dynamodb_endpoint_url="http://127.0.0.1:8000")
    store = open_store("dynamodb://predictions-prod", options)

    assert isinstance(store, DynamoStore)
    assert store.table_name == "predictions-prod"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "memory",
        "memory://x",
        "sqlite://",
        "sqlite:///",
        "sqlite://host/predictions.db",
        "sqlite:predictions.db",
        "mysql://localhost/predictions",
        "dynamodb://",
        "dynamodb://ab",
        "dynamodb://bad name",
        "dynamodb://table/extra",
        "dynamodb://table?region=eu-west-3",
        "predictions.db",
    ],
)
def test_a_url_of_any_other_form_is_refused_naming_it_and_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        open_store(url)

    message = str(raised.value)
    assert repr(url) in message
    for form in ("memory://", "sqlite:///", "sqlite:////", "postgresql://", "dynamodb://"):
        assert form in message
