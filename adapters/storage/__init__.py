"""Storage backends, each a PredictionStore: in memory, in a SQLite file, in DynamoDB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.storage.memory import MemoryStore
from adapters.storage.sqlite import SqliteStore
from adapters.storage.url import open_store

if TYPE_CHECKING:
    from adapters.storage.dynamodb import DynamoStore

__all__ = ["DynamoStore", "MemoryStore", "SqliteStore", "open_store"]


def __getattr__(name: str) -> Any:
    # Imported on first use: botocore is slow to import, and `python -m adapters.storage.dynamodb`
    # must not find its module already imported by this package.
    if name == "DynamoStore":
        from adapters.storage.dynamodb import DynamoStore

        return DynamoStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
