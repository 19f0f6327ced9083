"""Storage backends, each a PredictionStore: in memory, in a SQLite file, in DynamoDB."""

from adapters.storage.dynamodb import DynamoStore
from adapters.storage.memory import MemoryStore
from adapters.storage.sqlite import SqliteStore
from adapters.storage.url import open_store

__all__ = ["DynamoStore", "MemoryStore", "SqliteStore", "open_store"]
