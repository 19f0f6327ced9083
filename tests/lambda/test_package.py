"""make lambda-package's zip, on its own: unzipped, imported by a Python 3.12 interpreter
(Lambda's runtime) with nothing else on the path, it answers a real event."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
from moto.server import ThreadedMotoServer

from adapters.storage.dynamodb import DynamoStore
from scripts.build_lambda_package import find_interpreter

ROOT = Path(__file__).resolve().parents[2]
EVENT = ROOT / "tests" / "lambda" / "events" / "apigw_rest_v1_predict.json"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024

PROGRAM = """
import importlib._bootstrap_external as loader, json, sys
compiled = []  # modules Python had to compile from source: none of the package's may be
to_code = loader.SourceLoader.source_to_code
def counting(self, data, path, *, _optimize=-1):
    compiled.append(path)
    return to_code(self, data, path, _optimize=_optimize)
loader.SourceLoader.source_to_code = counting
sys.path.insert(0, sys.argv[1])
import handler
response = handler.handler(json.loads(sys.argv[2]), None)
heavy = sorted(m for m in ("sklearn", "numpy", "pandas", "scipy") if m in sys.modules)
print(json.dumps({"response": response, "version": list(sys.version_info[:2]), "heavy": heavy,
                  "handler_file": handler.__file__, "compiled": compiled}))
"""


def python312() -> str | None:
    return find_interpreter("3.12")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "lambda.zip"
    result = subprocess.run(
        [sys.executable, "scripts/build_lambda_package.py", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MB unzipped" in result.stdout
    return out


def test_the_package_is_far_under_lambdas_size_limit_and_leaves_scikit_learn_out(package: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        unzipped = sum(info.file_size for info in archive.infolist())
    assert unzipped < 120 * 1024 * 1024 < LAMBDA_UNZIPPED_LIMIT
    assert "handler.py" in names and "model/fast.json" in names
    assert not [n for n in names if n.startswith("artifacts/")]  # only the packaged model
    assert not [n for n in names if n.startswith(("sklearn/", "numpy/", "pandas/", "scipy/", "tests/"))]
    assert not [n for n in names if n.startswith("core/build/")], "build-time code stays out"
    assert not [n for n in names if n.startswith("prometheus_client/")], "a function serves no /metrics"
    server_only = {"adapters/serve.py", "adapters/asgi.py", "adapters/repair_aggregates.py",
                   "adapters/http/protocol.py", "adapters/http/prometheus.py"}
    assert not server_only & set(names), "what only uvicorn runs stays out"


def run_package(
    package: Path, tmp_path: Path, env: dict[str, str], observation: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Unzip the package and answer EVENT (with `observation` in its body, when given) with it on
    Python 3.12, with nothing else importable."""
    interpreter = python312()
    if interpreter is None:
        pytest.skip("no Python 3.12 interpreter on this machine (Lambda's runtime); the package was built but not run")
    root = tmp_path / "task"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(root)
    event = json.loads(EVENT.read_text())
    if observation is not None:
        event["body"] = json.dumps({**json.loads(event["body"]), "observation": observation})
    # -I -S: no site-packages, no user site, no PYTHONPATH: only the standard library and the package.
    result = subprocess.run(
        [interpreter, "-I", "-S", "-c", PROGRAM, str(root), json.dumps(event)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["handler_file"].startswith(str(root))
    return out


def test_the_package_keeps_only_the_botocore_models_the_function_uses(package: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        services = {n.split("/")[2] for n in archive.namelist() if n.startswith("botocore/data/") and n.count("/") > 3}
        endpoints = json.loads(archive.read("botocore/data/endpoints.json"))
    assert services == {"dynamodb", "sts"}
    assert {"dynamodb", "sts"} == {name for p in endpoints["partitions"] for name in p["services"]}


def test_the_unzipped_package_stores_in_dynamodb_through_moto_server(package: Path, tmp_path: Path) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        aws = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://{host}:{port}",
        }
        store = DynamoStore("package-test", region=aws["AWS_REGION"], endpoint_url=aws["AWS_ENDPOINT_URL_DYNAMODB"])
        with pytest.MonkeyPatch.context() as patch:
            for name, value in aws.items():
                patch.setenv(name, value)
            store.create_table()
            out = run_package(package, tmp_path, {**aws, "STORE_URL": "dynamodb://package-test"})
            body = json.loads(out["response"]["body"])
            assert out["response"]["statusCode"] == 200
            assert store.get(body["id"]).proba == body["proba"]
    finally:
        server.stop()


def test_the_unzipped_package_alone_answers_an_event_on_python_3_12(package: Path, tmp_path: Path) -> None:
    out = run_package(package, tmp_path, {"STORE_URL": f"sqlite:///{tmp_path / 'lambda.db'}"})
    assert out["version"] == [3, 12]
    assert out["heavy"] == []
    # Lambda's code directory is read-only: bytecode not shipped would be compiled at every cold start.
    assert [path for path in out["compiled"] if path.startswith(str(tmp_path / "task"))] == []
    assert out["response"]["statusCode"] == 200
    body = json.loads(out["response"]["body"])
    assert set(body) >= {"id", "observation_id", "proba", "predicted_class", "true_class"}


@pytest.fixture(scope="module")
def forest_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`make lambda-package MODEL_DIR=...` for a random forest fitted here: (zip, model version)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from tests.core.fitting import fit_artifact
    from tests.core.test_fast_forms import columns, imputed

    work = tmp_path_factory.mktemp("forest-package")
    model = fit_artifact(work / "forest", make_pipeline(columns(imputed()), RandomForestClassifier(60, random_state=0)))
    assert model.engine == "fast"
    venv = Path(sys.prefix)
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", f"{venv}/.installed", "lambda-package", f"VENV={venv}",
         f"MODEL_DIR={work / 'forest'}", f"LAMBDA_ZIP={work / 'lambda.zip'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "of Lambda's 250 MB limit" in result.stdout
    return work / "lambda.zip", model.version


def test_a_forest_package_carries_its_model_and_compiled_code_and_no_server(forest_package: tuple[Path, str]) -> None:
    package, _ = forest_package
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        unzipped = sum(info.file_size for info in archive.infolist())
    assert unzipped <= 15 * 1024 * 1024
    assert {"model/manifest.json", "model/fast.json", "model/model.joblib"} <= set(names)
    assert [n for n in names if n.startswith("model/__pycache__/fast-") and n.endswith(".cpython-312.bin")]
    top = {n.split("/")[0].split("-")[0] for n in names}
    assert not top & {"uvicorn", "uvloop", "httptools", "click", "sklearn", "numpy", "scipy", "pandas", "artifacts"}


def test_an_unzipped_forest_package_serves_its_own_model_without_compiling(
    forest_package: tuple[Path, str], tmp_path: Path
) -> None:
    package, version = forest_package
    from tests.core.fitting import GOOD

    # No MODEL_DIR: the package serves its own model.
    out = run_package(package, tmp_path, {"STORE_URL": f"sqlite:///{tmp_path / 'lambda.db'}"}, GOOD)
    assert out["response"]["statusCode"] == 200, out["response"]
    assert json.loads(out["response"]["body"])["model_version"] == version
    assert out["heavy"] == []
    assert [path for path in out["compiled"] if path.startswith(str(tmp_path / "task"))] == []


def test_a_package_for_scikit_learn_takes_only_the_scientific_stack_of_requirements_txt(tmp_path: Path) -> None:
    from scripts.build_lambda_package import SCIENTIFIC_STACK, package_requirements

    written = package_requirements(ROOT / "requirements.txt", tmp_path / "stack.txt", SCIENTIFIC_STACK)
    first, *pins = written.read_text().splitlines()
    assert first == f"-r {ROOT / 'requirements-lambda.txt'}"  # resolved together with what serving needs
    assert sorted(p.split("==")[0] for p in pins) == ["joblib", "numpy", "pandas", "scikit-learn", "scipy"]
    assert all("==" in p for p in pins)


def test_a_package_with_postgres_stores_in_postgresql_on_python_3_12(tmp_path: Path, postgres_url: str) -> None:
    """psycopg's binary wheel for the runtime, with its own libpq: the unzipped package alone
    (no site-packages) stores the event's prediction in the test's PostgreSQL server."""
    out = tmp_path / "dist" / "lambda.zip"
    result = subprocess.run(
        [sys.executable, "scripts/build_lambda_package.py", "--with-postgres", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    assert any(n.startswith("psycopg_binary/") for n in names) and any(n.startswith("psycopg_pool/") for n in names)

    answered = run_package(out, tmp_path, {"STORE_URL": postgres_url})

    assert answered["response"]["statusCode"] == 200, answered["response"]
    body = json.loads(answered["response"]["body"])
    with psycopg.connect(postgres_url) as conn:
        stored = conn.execute("SELECT proba FROM predictions").fetchall()
    assert stored == [(body["proba"],)]
