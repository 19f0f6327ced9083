"""Runtime configuration: the only code that reads environment variables.

`Settings.from_env(os.environ)` is called once, by the entry points (adapters/asgi.py and
handler.py); tests pass a plain dict. Every bad value is a ConfigurationError (a ValueError)
naming the variable, its value and the fix, so a misconfigured deployment fails at startup
instead of on the first request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.storage.base import StoreOptions
from core.model import DEFAULT_MODEL_DIR
from core.ports import MAX_BATCH
from core.records import DEFAULT_MAX_STRING_LENGTH
from core.shadows import MAX_SHADOWS

DEFAULT_STORE_URL = "sqlite:///predictions.db"
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_BATCH = 100
# Upper bounds keep a typo (an extra zero or three) from turning into a memory problem.
MAX_MAX_BODY_BYTES = 64 << 20
MAX_MAX_STRING_LENGTH = 65536
DEFAULT_REQUEST_TIMEOUT = 15
MAX_REQUEST_TIMEOUT = 600
# A batch is stored all or nothing in one write; every store takes at most core's MAX_BATCH.
MAX_MAX_BATCH = MAX_BATCH
# Each worker holds the model and a store connection; more than this on one dyno is a typo.
MAX_WEB_CONCURRENCY = 32
# PostgreSQL connections per worker process: dynos x WEB_CONCURRENCY x this must fit the plan's
# connection limit (Heroku Postgres Essential: 20; 1 dyno x 2 workers x 4 = 8 leaves room for a
# second dyno and a one-off `heroku run`).
DEFAULT_DATABASE_POOL_SIZE = 4
MAX_DATABASE_POOL_SIZE = 100
DEFAULT_DATABASE_STATEMENT_TIMEOUT = 5
MAX_DATABASE_STATEMENT_TIMEOUT = 600
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigurationError(ValueError):
    """A setting the service cannot start with: which variable, its value, what is wrong, the fix.

    Its text is one line, for the last line a failed start prints (and the log of a Lambda cold start).
    """

    def __init__(self, variable: str, value: object, problem: str, fix: str, *, secret: bool = False) -> None:
        self.variable, self.value, self.problem, self.fix = variable, value, problem, fix
        shown = "(hidden)" if secret else repr(value)
        super().__init__(f"{variable}={shown}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class Settings:
    """Everything the composition root needs to build the service and its HTTP app."""

    store_url: str = field(default=DEFAULT_STORE_URL, repr=False)
    """STORE_URL: where predictions are kept: `sqlite:///path.db`, `memory://`,
    `postgresql://user:password@host:port/database` or `dynamodb://table`. Unset, DATABASE_URL
    (which Heroku sets when a Postgres add-on is attached) is used, else sqlite:///predictions.db.
    Not in repr: a database URL holds a password."""

    store_url_variable: str = "STORE_URL"
    """Which variable `store_url` came from (STORE_URL or DATABASE_URL), for error messages."""

    database_pool_size: int = DEFAULT_DATABASE_POOL_SIZE
    """DATABASE_POOL_SIZE: most PostgreSQL connections one worker process opens."""

    database_statement_timeout: int = DEFAULT_DATABASE_STATEMENT_TIMEOUT
    """DATABASE_STATEMENT_TIMEOUT: seconds a PostgreSQL statement (a wait for a lock included)
    may take before the request fails with 503; a wait for a connection of the pool takes this
    or the 5 s connect timeout, the larger."""

    model_dir: Path = DEFAULT_MODEL_DIR
    """MODEL_DIR: directory of the model artifact (manifest.json, model.joblib, fast.json)."""

    shadow_model_dirs: tuple[Path, ...] = ()
    """SHADOW_MODEL_DIRS: comma-separated artifact directories of challengers (at most
    core.shadows.MAX_SHADOWS), which score every observation beside MODEL_DIR's champion."""

    api_key: str | None = field(default=None, repr=False)
    """API_KEY: when set, reading and updating predictions need it (Bearer or X-API-Key)."""

    predict_requires_key: bool = False
    """PREDICT_REQUIRES_KEY: also require the key on POST /predict (needs API_KEY)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """MAX_BODY_BYTES: largest request body accepted; larger ones get 413 before being read."""

    max_batch: int = DEFAULT_MAX_BATCH
    """MAX_BATCH: most observations one batch POST /predict may carry."""

    max_string_length: int = DEFAULT_MAX_STRING_LENGTH
    """MAX_STRING_LENGTH: most characters of any string in an observation (a category, another
    key or its value); longer ones are 422. It bounds the size of stored records and of a page."""

    request_timeout: int = DEFAULT_REQUEST_TIMEOUT
    """REQUEST_TIMEOUT: seconds a client has to send a whole request (headers and body), from the
    connection's opening or the request's first byte; then the server closes the connection.
    Under uvicorn only (Lambda receives whole requests)."""

    aws_region: str | None = None
    """AWS_REGION (or AWS_DEFAULT_REGION): region of the DynamoDB table."""

    dynamodb_endpoint_url: str | None = None
    """AWS_ENDPOINT_URL_DYNAMODB: a DynamoDB endpoint other than AWS's (local DynamoDB, moto)."""

    log_level: str = "INFO"
    """LOG_LEVEL: level of this service's loggers (DEBUG, INFO, WARNING, ERROR, CRITICAL)."""

    dyno: str | None = None
    """DYNO: set by Heroku on every dyno; its presence means the local disk is ephemeral."""

    web_concurrency: int | None = None
    """WEB_CONCURRENCY: uvicorn worker processes of `python -m adapters.serve` (the Procfile's
    default is 2; unset elsewhere, 1)."""

    metrics_dir: Path | None = None
    """PROMETHEUS_MULTIPROC_DIR: where the worker processes of one server add up their metrics
    (prometheus_client's multiprocess mode, which reads it at import); `python -m adapters.serve`
    sets a fresh one per server when it is unset. Unset, each process counts its own."""

    def __post_init__(self) -> None:
        if not self.store_url:
            raise ConfigurationError(self.store_url_variable, self.store_url, "must not be empty",
                                     "unset it for sqlite:///predictions.db, or name a store (see the README)")
        if self.api_key is not None:
            _check_api_key(self.api_key)
        if self.predict_requires_key and not self.api_key:
            raise ConfigurationError("PREDICT_REQUIRES_KEY", "true", "needs API_KEY, which is not set",
                                     "set API_KEY too, or unset PREDICT_REQUIRES_KEY")
        _check_range("MAX_BODY_BYTES", self.max_body_bytes, 1, MAX_MAX_BODY_BYTES)
        _check_range("MAX_BATCH", self.max_batch, 1, MAX_MAX_BATCH)
        _check_range("MAX_STRING_LENGTH", self.max_string_length, 1, MAX_MAX_STRING_LENGTH)
        _check_range("REQUEST_TIMEOUT", self.request_timeout, 1, MAX_REQUEST_TIMEOUT)
        if len(self.shadow_model_dirs) > MAX_SHADOWS:
            raise ConfigurationError("SHADOW_MODEL_DIRS", ",".join(map(str, self.shadow_model_dirs)),
                                     f"names {len(self.shadow_model_dirs)} challengers; at most {MAX_SHADOWS}",
                                     f"keep the {MAX_SHADOWS} you most want to compare")
        _check_range("DATABASE_POOL_SIZE", self.database_pool_size, 1, MAX_DATABASE_POOL_SIZE)
        _check_range("DATABASE_STATEMENT_TIMEOUT", self.database_statement_timeout, 1, MAX_DATABASE_STATEMENT_TIMEOUT)
        if self.web_concurrency is not None:
            _check_range("WEB_CONCURRENCY", self.web_concurrency, 1, MAX_WEB_CONCURRENCY)
        if self.log_level not in LOG_LEVELS:
            raise ConfigurationError("LOG_LEVEL", self.log_level, "is not a log level",
                                     f"use one of {', '.join(LOG_LEVELS)}")

    @property
    def store_options(self) -> StoreOptions:
        """What the store's backend needs beyond its URL."""
        return StoreOptions(
            aws_region=self.aws_region,
            dynamodb_endpoint_url=self.dynamodb_endpoint_url,
            pool_size=self.database_pool_size,
            statement_timeout=float(self.database_statement_timeout),
        )

    @property
    def on_heroku(self) -> bool:
        return bool(self.dyno)

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)  # type: ignore[no-any-return]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from environment variables; unset or empty variables take the defaults."""

        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        store_url_variable = "STORE_URL" if get("STORE_URL") or not get("DATABASE_URL") else "DATABASE_URL"
        return cls(
            store_url=get(store_url_variable) or DEFAULT_STORE_URL,
            store_url_variable=store_url_variable,
            database_pool_size=_parse_int("DATABASE_POOL_SIZE", get("DATABASE_POOL_SIZE"), DEFAULT_DATABASE_POOL_SIZE),
            database_statement_timeout=_parse_int(
                "DATABASE_STATEMENT_TIMEOUT", get("DATABASE_STATEMENT_TIMEOUT"), DEFAULT_DATABASE_STATEMENT_TIMEOUT
            ),
            model_dir=Path(get("MODEL_DIR") or DEFAULT_MODEL_DIR),
            shadow_model_dirs=tuple(Path(part.strip()) for part in (get("SHADOW_MODEL_DIRS") or "").split(",")
                                    if part.strip()),
            # Not stripped: a key is used exactly as given, and whitespace in it is refused.
            api_key=environ.get("API_KEY") or None,
            predict_requires_key=_parse_bool("PREDICT_REQUIRES_KEY", environ.get("PREDICT_REQUIRES_KEY", "")),
            max_body_bytes=_parse_int("MAX_BODY_BYTES", get("MAX_BODY_BYTES"), DEFAULT_MAX_BODY_BYTES),
            max_batch=_parse_int("MAX_BATCH", get("MAX_BATCH"), DEFAULT_MAX_BATCH),
            max_string_length=_parse_int("MAX_STRING_LENGTH", get("MAX_STRING_LENGTH"), DEFAULT_MAX_STRING_LENGTH),
            request_timeout=_parse_int("REQUEST_TIMEOUT", get("REQUEST_TIMEOUT"), DEFAULT_REQUEST_TIMEOUT),
            aws_region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
            dynamodb_endpoint_url=get("AWS_ENDPOINT_URL_DYNAMODB"),
            log_level=(get("LOG_LEVEL") or "INFO").upper(),
            dyno=get("DYNO"),
            web_concurrency=_parse_int("WEB_CONCURRENCY", get("WEB_CONCURRENCY"), None),
            metrics_dir=Path(directory) if (directory := get("PROMETHEUS_MULTIPROC_DIR")) else None,
        )


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(name, raw, "is not true or false", "use true or false (1/0, yes/no, on/off)")


def _parse_int(name: str, raw: str | None, default: int | None) -> Any:
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(name, raw, "is not a whole number", "use digits only, or unset it") from None


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(name, value, f"must be a whole number from {low} to {high}",
                                 f"set a value from {low} to {high}, or unset it for the default")


def _check_api_key(key: str) -> None:
    # Header values are ASCII text without surrounding whitespace; a key that cannot be sent
    # verbatim in a header could never be matched, so refuse it now rather than lock clients out.
    if not key or any(not 0x21 <= ord(ch) <= 0x7E for ch in key):
        raise ConfigurationError("API_KEY", key, "must be printable ASCII without spaces",
                                 "choose a key of printable ASCII characters, e.g. from `openssl rand -hex 32`",
                                 secret=True)
