"""The STORE_URL setting turned into a PredictionStore."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from adapters.storage.memory import MemoryStore
from adapters.storage.sqlite import SqliteStore
from core.ports import PredictionStore

ACCEPTED = (
    "memory://",
    "sqlite:///relative/path.db",
    "sqlite:////absolute/path.db",
    "dynamodb://TABLE_NAME",
)
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")


def open_store(url: str, *, region: str | None = None, endpoint_url: str | None = None) -> PredictionStore:
    """The store `url` names; `region` and `endpoint_url` are used by `dynamodb://` only.

    Nothing is opened or contacted here: a bad path or an unreachable table shows on first use
    or on `check()`. A URL of any other form raises UnsupportedStoreUrl (a ValueError) naming it
    and the accepted forms.
    """
    if not isinstance(url, str):
        raise _bad(url)
    if url == "memory://":
        return MemoryStore()
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return SqliteStore(url[len("sqlite:///"):])
    if url.startswith("dynamodb://"):
        parts = urlsplit(url)
        if TABLE_NAME.fullmatch(parts.netloc) and not (parts.path or parts.query or parts.fragment):
            from adapters.storage.dynamodb import DynamoStore  # botocore is slow to import

            return DynamoStore(parts.netloc, region=region, endpoint_url=endpoint_url)
        raise _bad(url, "a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.', with nothing after it")
    raise _bad(url)


class UnsupportedStoreUrl(ValueError):
    """A URL of no form this service knows; `problem` says what is wrong, without the URL."""

    def __init__(self, url: object, problem: str) -> None:
        self.problem = problem
        super().__init__(f"unsupported store URL {url!r}; use one of: {', '.join(ACCEPTED)}")


def _bad(url: object, problem: str = "not a store URL this service knows") -> UnsupportedStoreUrl:
    return UnsupportedStoreUrl(url, problem)
