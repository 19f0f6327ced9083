"""Heroku's deployment files agree with the code: app.json provisions Postgres, and the Procfile's
web line, given only the DATABASE_URL the add-on sets, stores its predictions in PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from adapters.settings import Settings
from tests.reliability.support import run_procfile_web

ROOT = Path(__file__).resolve().parents[2]
# Heroku Postgres Essential-0's connection limit, the plan app.json asks for.
ESSENTIAL_0_CONNECTIONS = 20


def app_json() -> dict[str, Any]:
    return json.loads((ROOT / "app.json").read_text())  # type: ignore[no-any-return]


def test_app_json_provisions_heroku_postgres_as_database_url() -> None:
    addons = app_json()["addons"]

    assert [a["plan"].split(":")[0] for a in addons] == ["heroku-postgresql"]
    assert addons[0].get("as", "DATABASE") == "DATABASE"  # the add-on then sets DATABASE_URL
    assert app_json()["formation"]["web"]["quantity"] >= 1


def test_app_json_settings_are_valid_and_fit_the_plans_connection_limit() -> None:
    env = {name: spec["value"] for name, spec in app_json()["env"].items() if "value" in spec}
    settings = Settings.from_env({**env, "DATABASE_URL": "postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com/d"})
    dynos = app_json()["formation"]["web"]["quantity"]

    assert settings.store_url_variable == "DATABASE_URL"
    assert type(settings.web_concurrency) is int
    assert dynos * settings.web_concurrency * settings.database_pool_size <= ESSENTIAL_0_CONNECTIONS


def test_the_procfile_web_line_stores_in_postgres_given_only_database_url(tmp_path: Path, postgres_url: str) -> None:
    run = run_procfile_web({"DYNO": "web.1", "DATABASE_URL": postgres_url}, tmp_path / "web.log")

    assert run.reply.status == 200, run.reply.body
    assert run.status == 0, run.output
    assert "WILL BE LOST" not in run.output  # the SQLite warning: not for Postgres
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT id_key FROM predictions").fetchall() == [("0",)]
