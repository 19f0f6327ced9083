"""The artifact shipped in artifacts/titanic: it loads, matches its manifest, keeps its promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import default_model, load_model, predict
from core.model import DEFAULT_MODEL_DIR, MODEL_FILE, sha256_file
from tests.core.fitting import SHARED_CSV
from tests.floats import assert_reproduced, close

needs_csv = pytest.mark.skipif(not SHARED_CSV.is_file(), reason=f"training data not present at {SHARED_CSV}")
README_OBSERVATION = {
    "Age": 22.0,
    "Cabin": None,
    "Embarked": "S",
    "Fare": 7.25,
    "Parch": 0,
    "Pclass": 3,
    "Sex": "male",
    "SibSp": 1,
}


def test_the_shipped_model_loads_and_matches_its_manifest() -> None:
    model = default_model()
    assert model.version == sha256_file(DEFAULT_MODEL_DIR / MODEL_FILE)
    assert model.engine == "fast"
    assert model.manifest["feature_names"] == ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Cabin", "Embarked"]
    assert model.manifest["metrics"]["roc_auc"] >= 0.85


def test_the_readme_observation_is_scored() -> None:
    p = predict(README_OBSERVATION)
    assert p.predicted_class is False and 0.0 < p.proba < 0.5 and p.warnings == ()


@needs_csv
def test_the_fast_form_agrees_with_scikit_learn_on_every_training_row() -> None:
    import pandas as pd

    table = pd.read_csv(SHARED_CSV)
    fast, slow = default_model(), load_model(DEFAULT_MODEL_DIR, engine="sklearn")
    rows = table.drop(columns=["Survived", "PassengerId", "Name", "Ticket"]).astype(object)
    observations = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict("records")]
    for observation in observations:
        a, b = predict(observation, model=fast), predict(observation, model=slow)
        assert abs(a.proba - b.proba) <= 1e-6
        assert a.predicted_class == b.predicted_class or abs(b.proba - b.threshold) <= 1e-6


@needs_csv
def test_the_training_metrics_and_data_fingerprint_are_reproduced() -> None:
    from core.build.artifact import data_fingerprint
    from core.build.dataset import read_table
    from core.build.train import cross_validated_metrics

    manifest = default_model().manifest
    X, y = read_table(SHARED_CSV, "Survived", ["PassengerId", "Name", "Ticket"])
    assert data_fingerprint(X.assign(Survived=y)) == manifest["training"]["fingerprint"]
    assert_reproduced(cross_validated_metrics(X, y, 1), manifest["metrics"])


@needs_csv
def test_make_models_command_rebuilds_the_shipped_model(tmp_path: Path) -> None:
    """`make model`'s command, into a temporary directory: the same metrics and the same
    probability for every passenger as the artifact in the repository (the code that ships
    with the model is the code that made it)."""
    import json
    import subprocess
    import sys

    import pandas as pd

    out = tmp_path / "rebuilt"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "core.build.train", "--data", str(SHARED_CSV), "--target", "Survived",
         "--drop", "PassengerId,Name,Ticket", "--out", str(out)],
        cwd=root, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rebuilt, shipped = load_model(out), default_model()
    assert_reproduced(rebuilt.manifest["metrics"], shipped.manifest["metrics"])
    assert_reproduced(rebuilt.manifest["features"], shipped.manifest["features"])
    fast_forms = [json.loads((directory / "fast.json").read_text()) for directory in (out, DEFAULT_MODEL_DIR)]
    keys = ("format", "family", "inputs", "steps", "outputs", "model")
    assert_reproduced(*[{k: f[k] for k in keys} for f in fast_forms])
    table = pd.read_csv(SHARED_CSV).drop(columns=["Survived", "PassengerId", "Name", "Ticket"]).astype(object)
    for row in table.to_dict("records"):
        observation = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        assert close(predict(observation, model=rebuilt).proba, predict(observation, model=shipped).proba)
