"""The composition root: Settings in, a wired service and its app out. Nothing else builds them."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from starlette.applications import Starlette

from adapters.http import build_app
from adapters.logs import JsonLineFormatter
from adapters.settings import Settings
from adapters.storage.url import open_store
from core.model import load_model
from core.service import PredictionService

logger = logging.getLogger("sklearn_serve")


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_service(settings: Settings) -> PredictionService:
    """Load and verify the model once, open the store (lazily: nothing is contacted yet)."""
    model = load_model(settings.model_dir)
    store = open_store(settings.store_url, region=settings.aws_region, endpoint_url=settings.dynamodb_endpoint_url)
    return PredictionService(model, store, utc_now)


def create_app(settings: Settings) -> Starlette:
    """The app the entry points serve: uvicorn (adapters/asgi.py) and Lambda (handler.py)."""
    configure_logging(settings)
    if settings.on_heroku and settings.store_url.startswith("sqlite:"):
        logger.warning(
            "STORE_URL is %s on Heroku (DYNO=%s): a dyno's disk is wiped on every restart and deploy, and "
            "each dyno has its own, so stored predictions WILL BE LOST. Use STORE_URL=dynamodb://<table>.",
            settings.store_url,
            settings.dyno,
        )
    service = build_service(settings)
    logger.info(
        "serving model %s (%s engine) from %s; store %s",
        service.model.version[:12],
        service.model.engine,
        settings.model_dir,
        settings.store_url.split("://", 1)[0],
    )
    return build_app(service, settings)


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
