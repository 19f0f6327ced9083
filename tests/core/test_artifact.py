from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core import ModelError, load_model
from core.model import MANIFEST_FILE, MODEL_FILE, manifest_digest, sha256_file


@pytest.fixture()
def copy(tiny_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_dir, tmp_path / "copy"))


def rewrite_manifest(path: Path, **changes: object) -> None:
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    manifest.update(changes)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_the_manifest_records_what_serving_needs(tiny_model) -> None:  # type: ignore[no-untyped-def]
    m = tiny_model.manifest
    assert m["feature_names"] == ["Age", "Fare", "Pclass", "Sex", "Port"]
    assert m["target"] == "y" and m["positive_class"] == 1 and m["threshold"] == 0.5
    assert set(m["versions"]) == {"scikit-learn", "numpy", "pandas"}
    age = m["features"][0]
    assert age["kind"] == "number" and age["nullable"] is True and age["seen_min"] >= 1
    assert m["features"][3]["categories"] == ["female", "male"]
    assert m["model_sha256"] == sha256_file(tiny_model.path / MODEL_FILE)


@pytest.mark.parametrize("engine", ["auto", "sklearn"])
def test_a_modified_model_file_is_refused(copy: Path, engine: str) -> None:
    with open(copy / MODEL_FILE, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="does not match its manifest"):
        load_model(copy, engine=engine)


def test_a_modified_fast_form_is_refused(copy: Path) -> None:
    fast = json.loads((copy / "fast.json").read_text())
    fast["model"]["intercept"] += 1.0
    (copy / "fast.json").write_text(json.dumps(fast))
    with pytest.raises(ModelError, match="fast form .* does not match"):
        load_model(copy)


def test_a_hand_edited_manifest_is_refused(copy: Path) -> None:
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["threshold"] = 0.1
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="modified after the artifact was built"):
        load_model(copy)


def test_a_missing_artifact_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="manifest.json is missing"):
        load_model(tmp_path)


def test_another_scikit_learn_version_is_refused_naming_both(copy: Path) -> None:
    rewrite_manifest(copy, versions={"scikit-learn": "0.24.2", "numpy": "1", "pandas": "1"})
    import sklearn

    with pytest.raises(ModelError, match=rf"scikit-learn 0\.24\.2, but {sklearn.__version__}"):
        load_model(copy, engine="sklearn")


def test_a_pickle_from_another_scikit_learn_is_refused_even_if_the_manifest_agrees(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joblib
    import sklearn.base

    pipeline = joblib.load(copy / MODEL_FILE)
    monkeypatch.setattr(sklearn.base, "__version__", "1.0.0")  # what __getstate__ records
    joblib.dump(pipeline, copy / MODEL_FILE)
    monkeypatch.undo()
    rewrite_manifest(copy, model_sha256=sha256_file(copy / MODEL_FILE))
    with pytest.raises(ModelError, match=r"pickled by scikit-learn 1\.0\.0, loaded by"):
        load_model(copy, engine="sklearn")
