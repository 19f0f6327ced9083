"""The composition root and the ASGI entry point."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from adapters.bootstrap import build_service, create_app
from adapters.settings import ConfigurationError, Settings


def test_build_service_wires_the_model_and_the_configured_store(tmp_path: Path) -> None:
    service = build_service(Settings(store_url=f"sqlite:///{tmp_path / 'p.db'}"))
    assert type(service.store).__name__ == "SqliteStore"
    assert service.model.version == service.model.manifest["model_sha256"]
    assert service.clock().tzinfo is not None


def test_sqlite_on_heroku_is_warned_about_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sklearn_serve"):
        create_app(Settings(store_url=f"sqlite:///{tmp_path / 'p.db'}", dyno="web.1"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warnings[0].getMessage() if warnings else ""
    assert "Heroku" in message and "heroku-postgresql" in message and "dynamodb://" in message


@pytest.mark.parametrize(
    "settings",
    [Settings(store_url="memory://"), Settings(store_url="dynamodb://tbl", dyno="web.1", aws_region="us-east-1")],
)
def test_no_heroku_warning_off_heroku_or_with_dynamodb(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sklearn_serve"):
        create_app(settings)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_bad_store_url_or_model_dir_fails_at_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="^STORE_URL='mysql://db': not a store URL") as store_error:
        create_app(Settings(store_url="mysql://db"))
    with pytest.raises(ConfigurationError, match="^MODEL_DIR=.*manifest.json is missing") as model_error:
        create_app(Settings(store_url="memory://", model_dir=tmp_path))
    assert store_error.value.variable == "STORE_URL" and "sqlite:///" in store_error.value.fix
    assert model_error.value.variable == "MODEL_DIR" and "core.build.package" in model_error.value.fix


def test_the_asgi_module_builds_its_app_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORE_URL", "memory://")
    monkeypatch.setenv("API_KEY", "asgi-test-key")
    monkeypatch.delitem(sys.modules, "adapters.asgi", raising=False)
    asgi = importlib.import_module("adapters.asgi")

    with TestClient(asgi.app) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/list-db-contents").status_code == 401
