"""The deployment files agree with the code: serverless.yml's table is the one the store creates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


class CloudFormationLoader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
    """Reads `!GetAtt`, `!Join`, `!Ref`… as plain values: only the structure matters here."""


CloudFormationLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def serverless() -> dict[str, Any]:
    return yaml.load((ROOT / "serverless.yml").read_text(), Loader=CloudFormationLoader)  # type: ignore[no-any-return]


def normalised(description: dict[str, Any]) -> dict[str, Any]:
    return {
        "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in description["AttributeDefinitions"]),
        "key": [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]],
        "indexes": sorted(
            (i["IndexName"], tuple((k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]),
             i["Projection"]["ProjectionType"])
            for i in description.get("GlobalSecondaryIndexes", [])
        ),
    }


def test_the_table_in_serverless_yml_is_the_table_the_dynamodb_store_creates(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    import moto

    from adapters.storage.dynamodb import DynamoStore

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    with moto.mock_aws():
        DynamoStore("deploy-check", region="us-east-1").create_table()
        created = boto3.client("dynamodb", region_name="us-east-1").describe_table(TableName="deploy-check")["Table"]

    declared = serverless()["resources"]["Resources"]["PredictionsTable"]["Properties"]
    assert declared["BillingMode"] == "PAY_PER_REQUEST"
    assert normalised(declared) == normalised(created)


def test_serverless_yml_points_at_the_handler_the_table_and_the_package() -> None:
    config = serverless()
    assert config["frameworkVersion"] == "3"
    assert config["provider"]["runtime"] == "python3.12"
    assert config["package"]["artifact"] == "dist/lambda.zip"
    function = config["functions"]["api"]
    assert function["handler"] == "handler.handler"
    assert function["events"] == [{"httpApi": "*"}]
    assert config["provider"]["environment"]["STORE_URL"] == "dynamodb://${self:custom.tableName}"
    assert config["resources"]["Resources"]["PredictionsTable"]["Properties"]["TableName"] == "${self:custom.tableName}"
    statements = config["provider"]["iam"]["role"]["statements"]
    assert all(not any("*" == action or action.endswith(":*") for action in s["Action"]) for s in statements)


def test_procfile_serves_the_asgi_app_on_herokus_port() -> None:
    web = (ROOT / "Procfile").read_text().strip()
    workers = r"WEB_CONCURRENCY=\$\{WEB_CONCURRENCY:-2\}"
    assert re.fullmatch(rf"web: {workers} python -m adapters\.serve .*--port \$PORT.*", web)
    assert (ROOT / ".python-version").read_text().strip() == "3.11"


def test_the_procfile_web_line_serves_a_prediction_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The line Heroku runs, as Heroku runs it (bash -c, $PORT and $WEB_CONCURRENCY set), then
    the SIGTERM a dyno gets on restart and deploy: exit status 0, the prediction stored."""
    import sqlite3

    from tests.reliability.support import run_procfile_web

    database = tmp_path / "predictions.db"
    run = run_procfile_web({"WEB_CONCURRENCY": "2", "STORE_URL": f"sqlite:///{database}"}, tmp_path / "web.log")

    assert run.reply.status == 200, run.reply.body
    assert set(run.reply.json()) >= {"id", "observation_id", "predicted_class", "proba", "true_class"}
    assert run.status == 0, run.output
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 1


def test_make_serve_serves_the_shipped_model_and_stops_cleanly(tmp_path: Path) -> None:
    """The README's `make serve`, with the environment this suite runs in (its install step
    taken as done: `make -o`), on a free port and a temporary SQLite file; then Ctrl+C."""
    import json
    import shutil
    import signal
    import subprocess
    import sys

    from tests.reliability.support import Client, Process, free_port, server_env, wait_until_answering

    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    venv = Path(sys.prefix)
    port = free_port()
    env = server_env({"STORE_URL": f"sqlite:///{tmp_path / 'predictions.db'}"})
    command = ["make", "--no-print-directory", "-o", f"{venv}/.serve-installed", "serve", f"VENV={venv}",
               f"PORT={port}"]
    process = Process(command, env, tmp_path / "make-serve.log")
    try:
        wait_until_answering(process, port)
        client = Client(port)
        health = client.request("GET", "/health")
        card = client.request("GET", "/model")
        client.close()
        assert health.status == 200 and health.json()["store"] == "ok"
        shipped = json.loads((ROOT / "artifacts" / "titanic" / "manifest.json").read_text())
        assert card.json()["model_sha256"] == shipped["model_sha256"]  # the shipped model
        process.signal_group(signal.SIGINT)  # Ctrl+C in the terminal
        process.popen.wait(timeout=30)  # make itself dies of the signal: its status says nothing
    except subprocess.TimeoutExpired:
        raise AssertionError(f"make serve ignored Ctrl+C for 30 s:\n{process.output()}") from None
    finally:
        process.stop()
    assert "Uvicorn running" in process.output()
    assert "Finished server process" in process.output(), process.output()  # uvicorn shut down cleanly


def test_make_serve_on_a_fresh_clone_installs_only_what_serving_needs(tmp_path: Path) -> None:
    """What `make serve` and `make test` would run in a checkout without a virtual environment
    (`make -n`: printed, not run)."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("no make on this machine")

    def planned(target: str) -> str:
        done = subprocess.run(["make", "-n", "--no-print-directory", target, f"VENV={tmp_path / 'fresh'}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    serve, test = planned("serve"), planned("test")
    assert "-r requirements.txt" in serve and "requirements-dev.txt" not in serve
    assert "adapters.serve" in serve
    assert "-r requirements.txt" in test and "-r requirements-dev.txt" in test and "pytest" in test
    assert "requirements-dev.txt" not in (ROOT / "requirements.txt").read_text()

