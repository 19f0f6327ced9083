"""Heroku's deployment files agree with the code: app.json provisions Postgres, and the Procfile's
web line, given only the DATABASE_URL the add-on sets, stores its predictions in PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import psycopg

from adapters.settings import Settings
from tests.reliability.support import Client, Process, free_port, server_env, wait_until_answering

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
    web = (ROOT / "Procfile").read_text().strip().removeprefix("web:").strip()
    port = free_port()
    env = server_env({
        "PORT": str(port), "HOST": "127.0.0.1", "DYNO": "web.1", "DATABASE_URL": postgres_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    process = Process(["bash", "-c", web], env, tmp_path / "web.log")
    try:
        wait_until_answering(process, port, workers=2)
        client = Client(port)
        reply = client.request("POST", "/predict", {"id": 0, "observation": {
            "Age": 22.0, "Cabin": None, "Embarked": "S", "Fare": 7.25, "Parch": 0, "Pclass": 3, "Sex": "male",
            "SibSp": 1}})
        client.close()
        process.signal_group(signal.SIGTERM)
        status = process.popen.wait(timeout=30)
    finally:
        process.stop()

    assert reply.status == 200, reply.body
    assert status == 0, process.output()
    assert "WILL BE LOST" not in process.output()  # the SQLite warning: not for Postgres
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT id_key FROM predictions").fetchall() == [("0",)]
