"""The served model is the verified artifact named at startup, and nothing a request says changes that.

A copy of artifacts/titanic modified in any way (a byte of the model, the fast form, the manifest,
a missing file) is refused: `create_app` raises ModelError, and uvicorn exits non-zero with a
message naming the file and the problem. A replaced pickle is never unpickled. No route takes a
path or a model: the OpenAPI document has no such parameter or field, and requests naming one
(query, header, body) are ignored or refused without loading anything.

The manifest's checksums prove integrity, not authenticity: whoever can write the artifact
directory can rebuild a consistent one. Keep MODEL_DIR read-only to the service.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import pickle
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.bootstrap import create_app
from adapters.settings import ConfigurationError, Settings
from core.errors import ModelError
from core.model import DEFAULT_MODEL_DIR, manifest_digest, sha256_file
from tests.helpers import README_PASSENGER
from tests.reliability.support import ROOT, free_port, record_figures, server_env, uvicorn_command

SHIPPED = Path(DEFAULT_MODEL_DIR)


class Marker:
    """A pickle that, when unpickled, creates the file `path` (standing in for any code a pickle can run)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(str(self.path)),))


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def edit_manifest(directory: Path, change: Callable[[dict[str, Any]], None], resign: bool = False) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    if resign:
        manifest["manifest_sha256"] = manifest_digest(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def replace_with_marker_pickle(directory: Path) -> None:
    with (directory / "model.joblib").open("wb") as out:
        pickle.dump(Marker(directory / "UNPICKLED"), out)


def retarget_manifest_to_the_new_model(directory: Path) -> None:
    replace_with_marker_pickle(directory)
    new_hash = sha256_file(directory / "model.joblib")
    edit_manifest(directory, lambda m: m.update(model_sha256=new_hash))


TAMPERING: list[tuple[str, Callable[[Path], None], str]] = [
    ("a byte of the model file", lambda d: flip_a_byte(d / "model.joblib"), "model file"),
    ("the model file truncated", lambda d: (d / "model.joblib").write_bytes((d / "model.joblib").read_bytes()[:100]),
     "does not match its manifest"),
    ("the model file replaced by another pickle", replace_with_marker_pickle, "does not match its manifest"),
    ("the model file missing", lambda d: (d / "model.joblib").unlink(), "is missing"),
    ("a byte of the fast form", lambda d: flip_a_byte(d / "fast.json"), "fast form"),
    ("the fast form missing", lambda d: (d / "fast.json").unlink(), "is missing"),
    ("the threshold in the manifest", lambda d: edit_manifest(d, lambda m: m.update(threshold=0.01)),
     "was modified after the artifact was built"),
    ("the manifest's model hash, to a replaced model", retarget_manifest_to_the_new_model,
     "was modified after the artifact was built"),
    ("a feature removed from the manifest", lambda d: edit_manifest(d, lambda m: m["features"].pop()),
     "was modified after the artifact was built"),
    ("the manifest not json", lambda d: (d / "manifest.json").write_text("{not json", encoding="utf-8"),
     "cannot read"),
    ("the manifest missing", lambda d: (d / "manifest.json").unlink(), "is not a model artifact"),
]


def tampered_copy(tmp_path: Path, name: str, tamper: Callable[[Path], None]) -> Path:
    directory = tmp_path / name.replace(" ", "-").replace("'", "")
    shutil.copytree(SHIPPED, directory)
    tamper(directory)
    return directory


@pytest.mark.parametrize(("name", "tamper", "message"), TAMPERING, ids=[t[0].replace(" ", "-") for t in TAMPERING])
def test_create_app_refuses_a_tampered_artifact_with_a_model_error_naming_the_problem(
    tmp_path: Path, name: str, tamper: Callable[[Path], None], message: str
) -> None:
    directory = tampered_copy(tmp_path, name, tamper)

    with pytest.raises(ConfigurationError) as refused:
        create_app(Settings(store_url="memory://", model_dir=directory))
    assert refused.value.variable == "MODEL_DIR" and isinstance(refused.value.__cause__, ModelError)

    assert message in str(refused.value)
    assert str(directory) in str(refused.value)
    assert not (directory / "UNPICKLED").exists(), "the replaced pickle was unpickled"


def test_uvicorn_refuses_to_start_on_any_tampered_artifact_and_says_why(tmp_path: Path) -> None:
    started = []
    for name, tamper, message in TAMPERING:
        directory = tampered_copy(tmp_path, name, tamper)
        env = server_env({"MODEL_DIR": str(directory), "STORE_URL": "memory://"})
        # The app must fail before uvicorn serves anything on its free port.
        process = subprocess.Popen(uvicorn_command(free_port()), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        started.append((name, directory, message, process))
    outcomes = []
    try:
        for name, directory, message, process in started:
            output, _ = process.communicate(timeout=60)
            outcomes.append((name, process.returncode, message in output, directory))
            assert process.returncode != 0, (name, output[-2000:])
            last = output.strip().splitlines()[-1]
            assert last.startswith(f"sklearn-serve: cannot start: MODEL_DIR='{directory}'"), (name, output[-2000:])
            assert message in last and "Traceback" not in output, (name, output[-2000:])
            assert not (directory / "UNPICKLED").exists(), name
    finally:
        for _, _, _, process in started:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait(10)
    record_figures("artifacts", tampered_copies=len(TAMPERING), refused=sum(code != 0 for _, code, _, _ in outcomes))


def test_the_untouched_copy_loads_so_the_refusals_are_about_the_tampering(tmp_path: Path) -> None:
    directory = tampered_copy(tmp_path, "untouched", lambda d: None)

    client = TestClient(create_app(Settings(store_url="memory://", model_dir=directory)))

    assert client.post("/predict", json={"id": 1, "observation": README_PASSENGER}).status_code == 200


# --- No request chooses the model ------------------------------------------------------------

PATH_LIKE = ("path", "dir", "file", "artifact", "url", "uri", "pickle", "joblib", "location", "load")
# Every parameter the API takes, and what it is: a new one fails the test until it is reviewed here.
KNOWN_PARAMETERS = {
    "X-Request-ID": "echoed request id",
    "id": "prediction id in the path",
    "limit": "page size",
    "cursor": "opaque listing cursor",
    "model_version": "/stats filter: compared with the versions of stored aggregates, never opened",
    "since": "/stats date filter",
    "until": "/stats date filter",
}


def walk(schema: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(schema, dict):
        found.append(schema)
        for value in schema.values():
            found += walk(value)
    elif isinstance(schema, list):
        for value in schema:
            found += walk(value)
    return found


def test_no_operation_of_the_openapi_document_takes_a_path_or_a_model() -> None:
    client = TestClient(create_app(Settings(store_url="memory://")))
    document = client.get("/openapi.json").json()
    parameters = {p["name"] for op in walk(document["paths"]) for p in op.get("parameters", []) if "name" in p}
    parameters |= {p["name"] for p in document["components"].get("parameters", {}).values()}
    request_schemas = ["PredictRequest", "SinglePredictRequest", "BatchPredictRequest", "UpdateRequest"]
    fields = {name for s in request_schemas for part in walk(document["components"]["schemas"][s])
              for name in part.get("properties", {})}

    assert parameters <= set(KNOWN_PARAMETERS), f"review the new parameters {parameters - set(KNOWN_PARAMETERS)}"
    assert fields == {"id", "observation", "observations", "strict", "true_class"}
    assert not [name for name in parameters | fields if any(word in name.lower() for word in PATH_LIKE)]
    for op in walk(document["paths"]):
        for parameter in op.get("parameters", []):
            schema = parameter.get("schema", {})
            assert schema.get("format") not in ("uri", "uri-reference", "path"), parameter
    for name in request_schemas[1:]:
        assert document["components"]["schemas"][name]["additionalProperties"] is False


@pytest.fixture
def evil_artifact(tmp_path: Path) -> Path:
    """A consistent artifact whose model, if anything ever unpickled it, would create UNPICKLED."""
    directory = tmp_path / "evil"
    shutil.copytree(SHIPPED, directory)
    (directory / "fast.json").unlink()
    replace_with_marker_pickle(directory)
    new_hash = sha256_file(directory / "model.joblib")
    edit_manifest(directory, lambda m: m.update(model_sha256=new_hash, fast_sha256=None), resign=True)
    return directory


def test_the_evil_artifact_would_run_its_pickle_if_anything_loaded_it(evil_artifact: Path) -> None:
    from core.model import load_model

    with contextlib.suppress(Exception):  # whatever the fake model fails with once its pickle has run
        load_model(evil_artifact)

    assert (evil_artifact / "UNPICKLED").exists()


def test_requests_naming_another_model_are_ignored_or_refused_and_load_nothing(
    evil_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(Settings(store_url="memory://")), raise_server_exceptions=False)
    version = client.get("/model").json()["model_version"]
    loads: list[Any] = []
    import core.model

    monkeypatch.setattr(core.model, "load_model", lambda *a, **k: loads.append(a) or pytest.fail("load_model"))
    monkeypatch.setattr(core.model, "load_pipeline", lambda *a, **k: loads.append(a) or pytest.fail("load_pipeline"))
    evil = str(evil_artifact)
    query = f"?model_dir={evil}&MODEL_DIR={evil}&model={evil}&path={evil}&model_path={evil}"
    headers = {"X-Model-Dir": evil, "Model-Dir": evil}

    client.get(f"/stats?model_version={evil}", headers=headers)  # a filter over stored figures: loads nothing
    answers = {
        "health": client.get("/health" + query, headers=headers),
        "model": client.get("/model" + query, headers=headers),
        "list": client.get("/predictions" + query, headers=headers),
        "predict": client.post("/predict" + query, headers=headers, json={"id": 1, "observation": README_PASSENGER}),
        "predict with a model_dir field": client.post(
            "/predict", json={"id": 2, "observation": README_PASSENGER, "model_dir": evil}),
        "batch with a model field": client.post(
            "/predict", json={"observations": [{"id": 3, "observation": README_PASSENGER, "model": evil}]}),
        "update with a model_path field": client.post(
            "/update", json={"id": 1, "true_class": 1, "model_path": evil}),
        "observation with a model_dir key": client.post(
            "/predict", json={"id": 4, "observation": {**README_PASSENGER, "model_dir": evil}}),
    }

    assert {name: r.status_code for name, r in answers.items()} == {
        "health": 200, "model": 200, "list": 200, "predict": 200,
        "predict with a model_dir field": 422, "batch with a model field": 422, "update with a model_path field": 422,
        "observation with a model_dir key": 200,
    }
    assert answers["observation with a model_dir key"].json()["warnings"] == [
        "model_dir: not a feature of this model, ignored"
    ]
    assert answers["model"].json()["model_version"] == version
    assert answers["predict"].json()["model_version"] == version
    assert loads == []
    assert not (evil_artifact / "UNPICKLED").exists()
