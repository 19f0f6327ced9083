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
from pathlib import Path

from bench.core_bench import OBSERVATION
from bench.servers import ROOT, free_port, running
from scripts.build_lambda_package import find_interpreter

LAMBDA_PYTHON = "3.12"  # serverless.yml's runtime

SOURCES = ["handler.py", "core", "adapters"]
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


def measure(env: dict[str, str], runs: int, package: tuple[str, Path] | None = None) -> dict[str, float | bool]:
    """Medians of `runs` fresh processes: this checkout on this Python, or `package` = (a Python
    of Lambda's version, the unzipped package) run with nothing else importable (-I -S)."""
    inside, wall = [], []
    loaded = {}
    for run in range(runs):
        event = json.dumps(predict_event(f"cold-{run}-{time.time_ns()}"))
        if package is None:
            command, cwd, base = [sys.executable, "-c", PROGRAM, event], ROOT, dict(os.environ)
        else:
            interpreter, root = package
            command = [interpreter, "-I", "-S", "-c", PROGRAM, event, str(root)]
            cwd, base = root, {"PATH": "/usr/bin:/bin"}
        started = time.perf_counter()
        out = subprocess.run(
            command,
            cwd=cwd,
            env={**base, **env},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        wall.append(time.perf_counter() - started)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        inside.append(result["seconds"])
        loaded = {"sklearn": result["sklearn"], "numpy": result["numpy"]}
    return {"inside": statistics.median(inside), "wall": statistics.median(wall), **loaded}


def unzipped_package(work: Path) -> tuple[str, Path] | None:
    """make lambda-package's zip, unzipped, and a Python of Lambda's version to run it (if any)."""
    interpreter = find_interpreter(LAMBDA_PYTHON)
    if interpreter is None:
        print(f"no Python {LAMBDA_PYTHON} here: the Lambda package is not measured", file=sys.stderr)
        return None
    zipped = work / "lambda.zip"
    subprocess.run(
        [sys.executable, "scripts/build_lambda_package.py", "--out", str(zipped), "--compile-with", interpreter],
        cwd=ROOT,
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
    results = {"SQLite": measure({"STORE_URL": f"sqlite:///{work / 'cold.db'}"}, args.runs)}
    if package:
        results["SQLite, Lambda package"] = measure({"STORE_URL": f"sqlite:///{work / 'pkg.db'}"}, args.runs, package)
    port = free_port()
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{port}",
    }
    with running([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, aws):
        subprocess.run(
            [sys.executable, "-m", "adapters.storage.dynamodb", "create-table", "cold-start"],
            cwd=ROOT,
            env={**os.environ, **aws},
            check=True,
            capture_output=True,
            timeout=60,
        )
        results["DynamoDB (moto server)"] = measure({**aws, "STORE_URL": "dynamodb://cold-start"}, args.runs)
        if package:
            results["DynamoDB (moto server), Lambda package"] = measure(
                {**aws, "STORE_URL": "dynamodb://cold-start"}, args.runs, package
            )
    print(f"# cold start: {args.runs} fresh processes per store, medians")
    print("| store | import handler → first answer | whole process (wall) | scikit-learn / numpy imported |")
    print("| --- | ---: | ---: | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['inside'] * 1000:.0f} ms | {r['wall'] * 1000:.0f} ms | {r['sklearn']} / {r['numpy']} |")


if __name__ == "__main__":
    main()
