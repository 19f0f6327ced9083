from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from core import load_model, predict
from core.build.train import build_pipeline
from tests.core.fitting import GOOD, make_table
from tests.floats import assert_reproduced, close

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "train.csv"
    make_table(200, seed=3).assign(RowId=range(200)).to_csv(path, index=False)
    return path


def test_train_writes_an_artifact_and_is_reproducible(csv: Path, tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        result = run(
            "core.build.train", "--data", str(csv), "--target", "y", "--drop", "RowId", "--out", str(tmp_path / name)
        )
        assert result.returncode == 0, result.stderr
        assert "ROC AUC" in result.stdout and "5/5" in result.stderr  # metrics and the progress bar
        outputs.append(load_model(tmp_path / name))
    assert_reproduced(outputs[0].manifest["metrics"], outputs[1].manifest["metrics"])
    assert close(predict(GOOD, model=outputs[0]).proba, predict(GOOD, model=outputs[1]).proba)
    assert outputs[0].manifest["feature_names"] == ["Age", "Fare", "Pclass", "Sex", "Port"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.csv", "--target", "y"], "data file not found: missing.csv"),
        (["--target", "nope"], "unknown column(s) nope"),
        (["--target", "y", "--drop", "Ghost"], "unknown column(s) Ghost"),
        (["--target", "Pclass"], "must have exactly 2 classes, found 3"),
        (["--target", "y", "--threshold", "1.5"], "--threshold must be between 0 and 1"),
    ],
)
def test_train_errors_are_one_line_without_a_traceback(
    csv: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    if "--data" not in args:
        args = ["--data", str(csv), *args]
    result = run("core.build.train", *args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


@pytest.mark.parametrize("command", ["core.build.train", "core.build.package", "core.score"])
@pytest.mark.parametrize("args", [[], ["--data"], ["--bogus", "1"]])
def test_usage_errors_are_one_line_and_exit_2(command: str, args: list[str]) -> None:
    result = run(command, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m {command}: error: ") and "--help" in lines[0]


def test_a_file_that_is_not_csv_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "ragged.csv"
    data.write_text("a,y\n1,0\n1,2,3,4\n")
    result = run("core.build.train", "--data", str(data), "--target", "y", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot read" in result.stderr


def test_package_wraps_a_users_own_pipeline(csv: Path, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    table = make_table(200, seed=3)
    X, y = table.drop(columns=["y"]), table["y"]
    from sklearn.compose import ColumnTransformer

    encode = ColumnTransformer(
        [
            (
                "cat",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
                ["Sex", "Port"],
            )
        ],
        remainder="passthrough",
    )
    user = make_pipeline(encode, HistGradientBoostingClassifier(max_iter=20, random_state=0)).fit(X, y)
    joblib.dump(user, tmp_path / "mine.joblib")
    result = run(
        "core.build.package",
        "--model",
        str(tmp_path / "mine.joblib"),
        "--data",
        str(csv),
        "--target",
        "y",
        "--drop",
        "RowId",
        "--out",
        str(tmp_path / "mine"),
    )
    assert result.returncode == 0, result.stderr
    assert "serving: fast (boosting form of HistGradientBoostingClassifier)" in result.stdout
    model = load_model(tmp_path / "mine")
    assert model.engine == "fast"
    expected = float(user.predict_proba(X.head(0).__class__([GOOD]))[0, 1])
    assert predict(GOOD, model=model).proba == pytest.approx(expected, rel=0, abs=1e-9)


def test_package_refuses_a_file_that_is_not_a_classifier(csv: Path, tmp_path: Path) -> None:
    joblib.dump({"not": "a model"}, tmp_path / "junk.joblib")
    result = run(
        "core.build.package",
        "--model",
        str(tmp_path / "junk.joblib"),
        "--data",
        str(csv),
        "--target",
        "y",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a fitted classifier with predict_proba" in result.stderr


def test_a_fast_form_is_only_shipped_when_it_agrees(tmp_path: Path) -> None:
    from core.build.artifact import build_fast_form, infer_schema

    table = make_table(120)
    X, y = table.drop(columns=["y"]), table["y"]
    pipeline = build_pipeline(X).fit(X, y)
    schema = infer_schema(X, pipeline, 1)
    data, reason = build_fast_form(pipeline, X, schema, 1, 0.5)
    assert data is not None and data["max_abs_difference"] <= 1e-6, reason
    pipeline[-1].coef_[0, 0] += 0.5  # the fast form is compiled from this, so it still agrees
    data, _ = build_fast_form(pipeline, X, schema, 1, 0.5)
    assert data is not None


def test_package_refuses_a_pipeline_that_raises_on_unseen_categories(csv: Path, tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    table = make_table(200, seed=3)
    X, y = table.drop(columns=["y"]), table["y"]
    encode = ColumnTransformer([("cat", OneHotEncoder(), ["Sex", "Port"])], remainder="drop")
    joblib.dump(make_pipeline(encode, LogisticRegression()).fit(X, y), tmp_path / "strict.joblib")
    result = run(
        "core.build.package", "--model", str(tmp_path / "strict.joblib"), "--data", str(csv), "--target", "y",
        "--drop", "RowId", "--out", str(tmp_path / "strict"),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "columntransformer__cat__handle_unknown is 'error'" in result.stderr
    assert "handle_unknown='ignore'" in result.stderr
    assert not (tmp_path / "strict").exists()


@pytest.mark.parametrize("command", ["core.build.train", "core.build.package"])
def test_an_output_directory_that_cannot_be_written_is_one_line(csv: Path, tmp_path: Path, command: str) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    model_args: list[str] = []
    if command == "core.build.package":
        table = make_table(200, seed=3)
        X, y = table.drop(columns=["y"]), table["y"]
        joblib.dump(build_pipeline(X).fit(X, y), tmp_path / "mine.joblib")
        model_args = ["--model", str(tmp_path / "mine.joblib")]
    result = run(
        command, *model_args, "--data", str(csv), "--target", "y", "--drop", "RowId",
        "--out", str(in_the_way / "out"),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: cannot write {in_the_way / 'out'}: ") and "Traceback" not in result.stderr
