"""The composition root: Settings in, a wired service and its app out. Nothing else builds them."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from starlette.applications import Starlette

from adapters.http import build_app
from adapters.logs import JsonLineFormatter, JsonMessage
from adapters.settings import ConfigurationError, Settings
from adapters.storage.secrets import redacted
from adapters.storage.url import ACCEPTED as STORE_URLS
from adapters.storage.url import UnsupportedStoreUrl, open_store
from adapters.writes import server_writes
from core.errors import ModelError, StorageError
from core.model import DEFAULT_MODEL_DIR, Model, load_model
from core.service import PredictionService

logger = logging.getLogger("sklearn_serve")

STORE_URL_FIX = (
    f"use one of {', '.join(STORE_URLS)}, or unset STORE_URL (and DATABASE_URL) for sqlite:///predictions.db"
)
STORE_CHECK_FIX = (
    "make the SQLite file's directory exist and be writable by this user with free space; for "
    "postgresql:// check the server is up and the URL's host, port, user, password and database; for "
    "dynamodb:// check the table exists and AWS_REGION, the credentials and AWS_ENDPOINT_URL_DYNAMODB"
)

__all__ = [
    "ConfigurationError", "build_service", "check_startup", "create_app", "print_cannot_start",
    "report_configuration_error",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_service(settings: Settings, serving: bool = False) -> PredictionService:
    """Load and verify the model once, open the store (lazily: nothing is contacted yet).

    A server's service (`serving`) runs its blocking work off the event loop
    (adapters.writes.server_writes); a command's, in its own thread. A model or store URL that
    cannot be used is a ConfigurationError naming its variable.
    """
    try:
        model = load_model(settings.model_dir)
    except ModelError as e:
        raise ConfigurationError(
            "MODEL_DIR", str(settings.model_dir), str(e),
            f"set MODEL_DIR to an artifact made by `python -m core.build.train` or `python -m core.build.package`, "
            f"or unset it for the shipped model ({DEFAULT_MODEL_DIR})",
        ) from e
    challengers: list[Model] = []
    for directory in settings.shadow_model_dirs:
        try:
            challenger = load_model(directory)
        except ModelError as e:
            raise ConfigurationError(
                "SHADOW_MODEL_DIRS", str(directory), str(e),
                "name artifact directories made by `python -m core.build.train` or `python -m core.build.package`, "
                "separated by commas, or unset it",
            ) from e
        if challenger.version in {model.version, *(c.version for c in challengers)}:
            raise ConfigurationError(
                "SHADOW_MODEL_DIRS", str(directory), f"is model {challenger.version[:12]}, already the champion or "
                "another challenger", "name each model once",
            )
        challengers.append(challenger)
    try:
        store = open_store(settings.store_url, settings.store_options)
    except ValueError as e:
        # Else a URL of a known form that its store refuses, e.g. sqlite:///:memory:
        problem = e.problem if isinstance(e, UnsupportedStoreUrl) else str(e)
        raise ConfigurationError(
            settings.store_url_variable, redacted(settings.store_url), problem, STORE_URL_FIX
        ) from None
    writes = server_writes(store, [model, *challengers]) if serving else None
    return PredictionService(model, store, utc_now, max_string_length=settings.max_string_length,
                             challengers=challengers, writes=writes)


def check_startup(settings: Settings) -> None:
    """What a server checks before any worker starts: every setting, the model, and a store that
    takes a write. Raises ConfigurationError; leaves nothing open."""
    service = build_service(settings)
    try:
        service.store.check()
    except StorageError as e:
        problem = f"the store failed its check, a write of a row of its own ({e})"
        raise ConfigurationError(
            settings.store_url_variable, redacted(settings.store_url), problem, STORE_CHECK_FIX
        ) from e
    finally:
        close = getattr(service.store, "close", None)
        if close is not None:
            close()


def print_cannot_start(error: ConfigurationError) -> None:
    """The last line a server that refused to start prints (adapters.serve, and its workers)."""
    print(f"sklearn-serve: cannot start: {error}", file=sys.stderr, flush=True)


def report_configuration_error(error: ConfigurationError) -> None:
    """The one log line of a start that failed on a setting (the Lambda cold start's)."""
    logger.error(JsonMessage({"event": "configuration_error", "variable": error.variable,
                              "problem": error.problem, "fix": error.fix, "message": str(error)}))


def create_app(settings: Settings, serve_metrics: bool = True) -> Starlette:
    """The app the entry points serve: uvicorn (adapters/asgi.py) and Lambda (handler.py, which
    serves no /metrics: see adapters.http.build_app)."""
    configure_logging(settings)
    if settings.on_heroku and settings.store_url.startswith("sqlite:"):
        logger.warning(
            "STORE_URL is %s on Heroku (DYNO=%s): a dyno's disk is wiped on every restart and deploy, and "
            "each dyno has its own, so stored predictions WILL BE LOST. Attach Heroku Postgres "
            "(`heroku addons:create heroku-postgresql`: it sets DATABASE_URL, which is used when STORE_URL "
            "is unset) or set STORE_URL=dynamodb://<table>.",
            settings.store_url,
            settings.dyno,
        )
    service = build_service(settings, serving=True)
    logger.info(
        "serving model %s (%s engine) from %s; store %s",
        service.model.version[:12],
        service.model.engine,
        settings.model_dir,
        settings.store_url.split("://", 1)[0],
    )
    for challenger, directory in zip(service.challengers, settings.shadow_model_dirs):
        logger.info("challenger %s (%s engine) from %s scores every request beside it",
                    challenger.version[:12], challenger.engine, directory)
    return build_app(service, settings, serve_metrics=serve_metrics)


def configure_logging(settings: Settings) -> None:
    """Give this service's loggers a level, and a handler when nothing else provides one.

    uvicorn configures only its own loggers and the Lambda runtime puts a handler on the root
    logger; a handler of our own is added only when the root has none, so lines are not doubled.
    Ours writes one JSON object per line (adapters/logs.py).
    """
    root = logging.getLogger("sklearn_serve")
    root.setLevel(settings.log_level_number)
    if not logging.getLogger().handlers and not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
        root.addHandler(handler)
