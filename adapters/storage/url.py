"""The STORE_URL setting turned into a PredictionStore: one backend module per URL scheme.

Adding a backend is a module with a StoreBase subclass and `open_url(url, options)` (see
adapters/storage/base.py), one line in BACKENDS, and its fixture in tests/storage/conftest.py.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from adapters.storage.base import BadStoreUrl, StoreOptions
from adapters.storage.secrets import redacted, scrubbed
from core.ports import PredictionStore


@dataclass(frozen=True)
class Backend:
    module: str  # imported on first use: botocore and psycopg take time to import
    forms: tuple[str, ...]  # what the URLs look like, for the error that lists them


_POSTGRES = Backend("adapters.storage.postgres", ("postgresql://USER:PASSWORD@HOST:PORT/DATABASE",))
BACKENDS: dict[str, Backend] = {
    "memory": Backend("adapters.storage.memory", ("memory://",)),
    "sqlite": Backend("adapters.storage.sqlite", ("sqlite:///relative/path.db", "sqlite:////absolute/path.db")),
    "postgresql": _POSTGRES,
    "postgres": _POSTGRES,  # what Heroku's DATABASE_URL says
    "dynamodb": Backend("adapters.storage.dynamodb", ("dynamodb://TABLE_NAME",)),
}
ACCEPTED = tuple(dict.fromkeys(form for backend in BACKENDS.values() for form in backend.forms))
SCHEME = re.compile(r"([a-z][a-z0-9+.-]*)://")


def open_store(url: str, options: StoreOptions | None = None) -> PredictionStore:
    """The store `url` names, configured by `options` (the fields its backend reads).

    Nothing is opened or contacted here: a bad path or an unreachable server shows on first use
    or on `check()`. A URL of any other form raises UnsupportedStoreUrl (a ValueError) naming it,
    with its password hidden, and the accepted forms.
    """
    scheme = SCHEME.match(url) if isinstance(url, str) else None
    backend = BACKENDS.get(scheme[1]) if scheme else None
    if backend is None:
        raise UnsupportedStoreUrl(url, "not a store URL this service knows")
    try:
        store: PredictionStore = importlib.import_module(backend.module).open_url(url, options or StoreOptions())
    except BadStoreUrl as e:
        raise UnsupportedStoreUrl(url, str(e)) from None
    return store


class UnsupportedStoreUrl(ValueError):
    """A URL of no form this service knows; `problem` says what is wrong, without the URL."""

    def __init__(self, url: object, problem: str) -> None:
        self.problem = scrubbed(problem, url) if isinstance(url, str) else problem
        super().__init__(f"unsupported store URL {redacted(url)!r}; use one of: {', '.join(ACCEPTED)}")
