"""Lambda cold start: a fresh Python process, from `import handler` to the first answered event.

    python -m bench.cold_start [--runs 15]

Each run is a new interpreter that imports handler (building the app: settings, model
verification, store) and answers an HTTP API v2 POST /predict. Measured inside the process
(from just before the import to the answer) and as the whole process's wall time, for an SQLite
store and for DynamoDB (moto's server on 127.0.0.1). Medians over the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from adapters.storage.dynamodb import DynamoStore
from bench.core_bench import OBSERVATION
from bench.servers import ROOT, free_port, running
from scripts.build_lambda_package import SOURCES, find_interpreter

LAMBDA_PYTHON = "3.12"  # serverless.yml's runtime

EVENT = ROOT / "tests" / "lambda" / "events" / "http_api_v2_batch_base64.json"
PROGRAM = """
import json, sys, time
start = time.perf_counter()
if len(sys.argv) > 2:
    sys.path.insert(0, sys.argv[2])  # an unzipped Lambda package
import handler
event = json.loads(sys.argv[1])
response = handler.handler(event, None)
elapsed = time.perf_counter() - start
assert response["statusCode"] == 200, response
print(json.dumps({"seconds": elapsed, "sklearn": "sklearn" in sys.modules, "numpy": "numpy" in sys.modules}))
"""


def predict_event(prediction_id: str) -> dict:
    """An HTTP API v2 POST /predict event: the recorded fixture with a fresh single-item body."""
    event = json.loads(EVENT.read_text())
    event["body"] = json.dumps({"id": prediction_id, "observation": OBSERVATION})
    event["isBase64Encoded"] = False
    return event


@dataclass
class Variant:
    """One way of cold-starting: this checkout on this Python, or `package` = (a Python of
    Lambda's version, the unzipped package) run with nothing else importable (-I -S)."""

    name: str
    store_env: Callable[[int], dict[str, str]]  # the store's variables for run k
    package: tuple[str, Path] | None = None
    inside: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    loaded: dict[str, bool] = field(default_factory=dict)

    def run_once(self, run: int) -> None:
        event = json.dumps(predict_event(f"cold-{run}-{time.time_ns()}"))
        if self.package is None:
            command, cwd, base = [sys.executable, "-c", PROGRAM, event], ROOT, dict(os.environ)
        else:
            interpreter, root = self.package
            command = [interpreter, "-I", "-S", "-c", PROGRAM, event, str(root)]
            cwd, base = root, {"PATH": "/usr/bin:/bin"}
        env = {**base, **self.store_env(run)}
        started = time.perf_counter()
        out = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=60)
        self.wall.append(time.perf_counter() - started)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        self.inside.append(result["seconds"])
        self.loaded = {"sklearn": result["sklearn"], "numpy": result["numpy"]}


def run_interleaved(variants: list[Variant], runs: int) -> None:
    """Every variant once per round, so the machine's noise falls on all of them alike."""
    for run in range(runs):
        for variant in variants:
            variant.run_once(run)


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def unzipped_package(work: Path, checkout: Path = ROOT) -> tuple[str, Path] | None:
    """make lambda-package's zip (of `checkout`), unzipped, and a Python of Lambda's version to
    run it (if any)."""
    interpreter = find_interpreter(LAMBDA_PYTHON)
    if interpreter is None:
        print(f"no Python {LAMBDA_PYTHON} here: the Lambda package is not measured", file=sys.stderr)
        return None
    zipped = work / "lambda.zip"
    subprocess.run(
        [sys.executable, "scripts/build_lambda_package.py", "--out", str(zipped), "--compile-with", interpreter],
        cwd=checkout,
        check=True,
        capture_output=True,
    )
    root = work / "task"
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(root)
    return interpreter, root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # A deployed package carries its bytecode (make lambda-package compiles it; Lambda's code
    # directory is read-only): so do the sources measured here, even where PYTHONDONTWRITEBYTECODE
    # is set and no run would ever leave .pyc files behind.
    subprocess.run([sys.executable, "-m", "compileall", "-q", *SOURCES], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="cold-start-"))
    package = unzipped_package(work)
    port = free_port()
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{port}",
    }

    def sqlite(name: str) -> Callable[[int], dict[str, str]]:
        return lambda run: {"STORE_URL": f"sqlite:///{work / name}"}

    live_tables: list[str] = []

    def fresh_table(run: int) -> dict[str, str]:
        # A new, empty table for every run, and the only one: moto copies every table it holds
        # for each transactional write, so tables left by earlier runs would slow later ones down.
        with patched_environ(aws):
            client = boto3.client(
                "dynamodb", region_name=aws["AWS_REGION"], endpoint_url=aws["AWS_ENDPOINT_URL_DYNAMODB"]
            )
            while live_tables:
                client.delete_table(TableName=live_tables.pop())
            table = f"cold-start-{run}-{time.time_ns()}"
            DynamoStore(table, region=aws["AWS_REGION"], endpoint_url=aws["AWS_ENDPOINT_URL_DYNAMODB"]).create_table()
        live_tables.append(table)
        return {**aws, "STORE_URL": f"dynamodb://{table}"}

    variants = [Variant("SQLite", sqlite("cold.db")), Variant("DynamoDB (moto server)", fresh_table)]
    if package:
        variants += [
            Variant("SQLite, Lambda package", sqlite("package.db"), package),
            Variant("DynamoDB (moto server), Lambda package", fresh_table, package),
        ]
    with running([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, aws):
        run_interleaved(variants, args.runs)
    results = {
        v.name: {"inside": statistics.median(v.inside), "wall": statistics.median(v.wall), **v.loaded}
        for v in variants
    }
    print(f"# cold start: {args.runs} fresh processes per variant, in interleaved rounds, medians")
    print("| store | import handler → first answer | whole process (wall) | scikit-learn / numpy imported |")
    print("| --- | ---: | ---: | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['inside'] * 1000:.0f} ms | {r['wall'] * 1000:.0f} ms | {r['sklearn']} / {r['numpy']} |")


if __name__ == "__main__":
    main()
