"""Every family of fast form, fitted on data the tests make, agrees with scikit-learn.

Each pipeline is built into an artifact as a user's would be; the test then loads it twice,
fast and through scikit-learn, and compares the answers on rows training never saw, with
nulls and unseen categories: within 1e-9 and the same class, or the test fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidObservation
from core.model import load_model
from core.predict import predict, predict_many
from tests.core.fitting import fit_artifact, make_table

TOLERANCE = 1e-9
NUMBERS = ["Age", "Fare", "Pclass"]
CATEGORIES = ["Sex", "Port"]


def observations(model: Any, n: int = 80) -> list[dict[str, Any]]:
    """Fresh rows, and each of the first ten with one feature nulled or one category unseen."""
    table = make_table(n, seed=99).drop(columns=["y"])
    names = model.schema.names
    rows = [{k: (None if pd.isna(v) else v) for k, v in row.items() if k in names} for row in table.to_dict("records")]
    variants = []
    for row in rows[:10]:
        for feature in model.schema.features:
            variants.append({**row, feature.name: None})
            if feature.kind == "category":
                variants.append({**row, feature.name: "never seen"})
    return rows + variants


def assert_fast_and_exact(directory: Path, family: str) -> None:
    fast, slow = load_model(directory), load_model(directory, engine="sklearn")
    assert fast.engine == "fast", fast.manifest["fast_reason"]
    assert fast.manifest["fast_reason"].startswith(f"fast ({family} form of ")
    checked = 0
    for observation in observations(fast):
        try:
            expected = predict(observation, model=slow)
        except InvalidObservation:
            continue  # a null the pipeline cannot take: refused by both (the schema says so)
        got = predict(observation, model=fast)
        assert abs(got.proba - expected.proba) <= TOLERANCE, observation
        assert got.predicted_class == expected.predicted_class
        checked += 1
    assert checked >= 80


def one_hot(**options: Any) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    options.setdefault("handle_unknown", "ignore")
    return make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"), OneHotEncoder(**options))


def columns(numbers: Any, categories: Any = None, **options: Any) -> Any:
    from sklearn.compose import ColumnTransformer

    blocks = [("num", numbers, NUMBERS), ("cat", categories if categories is not None else one_hot(), CATEGORIES)]
    return ColumnTransformer(blocks, **options)


def imputed(*steps: Any, **imputer: Any) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    return make_pipeline(SimpleImputer(**imputer), *steps)


def logistic() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000)


def linear_pipelines() -> dict[str, Callable[[], Any]]:
    import category_encoders
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        KBinsDiscretizer,
        MaxAbsScaler,
        MinMaxScaler,
        OneHotEncoder,
        OrdinalEncoder,
        PolynomialFeatures,
        RobustScaler,
        StandardScaler,
        TargetEncoder,
    )

    return {
        "imputer-mean-with-indicator": lambda: make_pipeline(
            columns(imputed(StandardScaler(), strategy="mean", add_indicator=True)), logistic()
        ),
        "imputer-median": lambda: make_pipeline(columns(imputed(StandardScaler(), strategy="median")), logistic()),
        "imputer-most-frequent": lambda: make_pipeline(
            columns(imputed(StandardScaler(), strategy="most_frequent", add_indicator=True)), logistic()
        ),
        "imputer-constant": lambda: make_pipeline(
            columns(imputed(StandardScaler(), strategy="constant", fill_value=-1.0)), logistic()
        ),
        "min-max-scaler": lambda: make_pipeline(columns(imputed(MinMaxScaler())), logistic()),
        "max-abs-scaler": lambda: make_pipeline(columns(imputed(MaxAbsScaler())), logistic()),
        "robust-scaler": lambda: make_pipeline(columns(imputed(RobustScaler())), logistic()),
        "log1p-and-identity": lambda: make_pipeline(
            columns(imputed(FunctionTransformer(np.log1p), FunctionTransformer(), StandardScaler())), logistic()
        ),
        "one-hot-infrequent": lambda: make_pipeline(
            columns(imputed(StandardScaler()), one_hot(handle_unknown="infrequent_if_exist", min_frequency=30)),
            logistic(),
        ),
        "one-hot-drop-first": lambda: make_pipeline(columns(imputed(), one_hot(drop="first")), logistic()),
        "one-hot-drop-if-binary": lambda: make_pipeline(columns(imputed(), one_hot(drop="if_binary")), logistic()),
        "ordinal-encoder-unknown-value": lambda: make_pipeline(
            columns(
                imputed(StandardScaler()),
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2),
            ),
            logistic(),
        ),
        "target-encoder": lambda: make_pipeline(
            columns(imputed(StandardScaler()), make_pipeline(one_hot().steps[0][1], TargetEncoder(cv=KFold(5)))),
            logistic(),
        ),
        "polynomial-degree-2": lambda: make_pipeline(
            columns(imputed(StandardScaler())), PolynomialFeatures(degree=2), StandardScaler(), logistic()
        ),
        "k-bins-one-hot": lambda: make_pipeline(
            columns(imputed(KBinsDiscretizer(n_bins=4, encode="onehot-dense", strategy="uniform"))),
            logistic(),
        ),
        "k-bins-ordinal": lambda: make_pipeline(
            columns(imputed(KBinsDiscretizer(n_bins=3, encode="ordinal", strategy="uniform"))), logistic()
        ),
        "passthrough-and-dropped-columns": lambda: make_pipeline(
            columns("passthrough", "drop", remainder="drop").set_params(num=imputed()), logistic()
        ),
        "remainder-passthrough": lambda: make_pipeline(
            columns(imputed(StandardScaler()), one_hot(sparse_output=False)).set_params(
                transformers=[("cat", one_hot(), CATEGORIES)], remainder=imputed()
            ),
            logistic(),
        ),
        "plain-pipeline-without-column-transformer": lambda: make_pipeline(
            category_encoders.OneHotEncoder(cols=CATEGORIES, handle_unknown="value", handle_missing="value"),
            imputed(),
            StandardScaler(),
            logistic(),
        ),
        "nested-pipelines": lambda: Pipeline(
            [("prepare", make_pipeline(columns(imputed(StandardScaler())))), ("model", make_pipeline(logistic()))]
        ),
        "sgd-log-loss": lambda: make_pipeline(
            columns(imputed(StandardScaler())), SGDClassifier(loss="log_loss", random_state=0)
        ),
        "the-original-tutorial": lambda: make_pipeline(
            category_encoders.OneHotEncoder(use_cat_names=True), imputed(strategy="mean"), logistic()
        ),
        "one-hot-on-integer-categories": lambda: make_pipeline(
            columns(imputed(StandardScaler()), None).set_params(
                cat=one_hot(), transformers=[("num", imputed(), ["Age", "Fare"]),
                                             ("int", OneHotEncoder(handle_unknown="ignore"), ["Pclass"]),
                                             ("cat", one_hot(), CATEGORIES)]
            ),
            logistic(),
        ),
    }


def tree_pipelines() -> dict[str, tuple[str, Callable[[], Any]]]:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from sklearn.tree import DecisionTreeClassifier

    encoded = lambda: columns(imputed(), sparse_threshold=0)  # noqa: E731 - a table of factories
    native = {"categorical_features": CATEGORIES, "random_state": 0, "max_iter": 60}
    return {
        "decision-tree": ("forest", lambda: make_pipeline(encoded(), DecisionTreeClassifier(random_state=0))),
        "decision-tree-with-missing-values": (
            "forest",
            lambda: make_pipeline(columns("passthrough", sparse_threshold=0), DecisionTreeClassifier(random_state=0)),
        ),
        "random-forest": ("forest", lambda: make_pipeline(encoded(), RandomForestClassifier(40, random_state=0))),
        "random-forest-with-missing-values": (
            "forest",
            lambda: make_pipeline(
                columns("passthrough", sparse_threshold=0), RandomForestClassifier(20, random_state=0)
            ),
        ),
        "extra-trees": ("forest", lambda: make_pipeline(encoded(), ExtraTreesClassifier(40, random_state=0))),
        "gradient-boosting": (
            "boosting",
            lambda: make_pipeline(encoded(), GradientBoostingClassifier(n_estimators=50, random_state=0)),
        ),
        "hist-gradient-boosting": (
            "boosting",
            lambda: make_pipeline(encoded(), HistGradientBoostingClassifier(max_iter=60, random_state=0)),
        ),
        "hist-gradient-boosting-with-missing-values": (
            "boosting",
            lambda: make_pipeline(
                columns("passthrough", sparse_threshold=0), HistGradientBoostingClassifier(max_iter=60, random_state=0)
            ),
        ),
        "hist-gradient-boosting-native-categories": ("boosting", lambda: HistGradientBoostingClassifier(**native)),
        "hist-gradient-boosting-ordinal-codes": (
            "boosting",
            lambda: make_pipeline(
                columns(
                    "passthrough",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
                    verbose_feature_names_out=False,
                ).set_output(transform="pandas"),
                HistGradientBoostingClassifier(**native),
            ),
        ),
    }


@pytest.mark.parametrize("name", sorted(linear_pipelines()))
def test_linear_pipelines_get_an_exact_fast_form(name: str, tmp_path: Path) -> None:
    fit_artifact(tmp_path / name, linear_pipelines()[name]())
    assert_fast_and_exact(tmp_path / name, "linear")


@pytest.mark.parametrize("name", sorted(tree_pipelines()))
def test_tree_ensembles_get_an_exact_fast_form(name: str, tmp_path: Path) -> None:
    family, pipeline = tree_pipelines()[name]
    fit_artifact(tmp_path / name, pipeline())
    assert_fast_and_exact(tmp_path / name, family)


def test_the_batch_path_gives_the_single_path_answers(tmp_path: Path) -> None:
    _, pipeline = tree_pipelines()["random-forest"]
    model = fit_artifact(tmp_path / "forest", pipeline())
    rows = observations(model)
    assert [p.proba for p in predict_many(rows, model=model)] == [predict(o, model=model).proba for o in rows]


def test_a_step_without_a_fast_form_is_named_with_what_would_allow_one(tmp_path: Path) -> None:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = fit_artifact(tmp_path / "knn", make_pipeline(columns(imputed()), KNeighborsClassifier()))
    assert model.engine == "sklearn"
    reason = model.card()["engine_reason"]
    assert reason.startswith("scikit-learn: no fast form, KNeighborsClassifier has no fast form")
    assert "RandomForestClassifier" in reason  # what would allow one
    model = fit_artifact(
        tmp_path / "sqrt",
        make_pipeline(columns(imputed(FunctionTransformer(np.sqrt))), logistic()),
    )
    assert model.engine == "sklearn"
    assert "step 'columntransformer': FunctionTransformer('sqrt') has no fast form" in model.card()["engine_reason"]
    forced = load_model(tmp_path / "sqrt", engine="sklearn")
    assert forced.card()["engine_reason"] == model.card()["engine_reason"]  # no fast form to choose
    linear = fit_artifact(tmp_path / "linear", make_pipeline(columns(imputed()), logistic()))
    assert load_model(tmp_path / "linear", engine="sklearn").card()["engine_reason"].startswith(
        "scikit-learn: chosen when loading (engine='sklearn')"
    )
    assert linear.card()["engine_reason"] == linear.manifest["fast_reason"]


def test_an_encoder_that_raises_on_unseen_values_is_served_by_scikit_learn_and_says_why(tmp_path: Path) -> None:
    from sklearn.preprocessing import OneHotEncoder

    model = fit_artifact(tmp_path / "strict", make_pipeline_of(columns(imputed(), OneHotEncoder()), logistic()))
    assert model.engine == "sklearn"
    assert "OneHotEncoder cannot encode a value training did not see" in model.card()["engine_reason"]
    assert "handle_unknown='ignore'" in model.card()["engine_reason"]


def test_columns_chosen_by_a_label_slice_compile(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer

    selected = ColumnTransformer([("num", imputed(), slice("Age", "Pclass")), ("cat", one_hot(), CATEGORIES)])
    fit_artifact(tmp_path / "slice", make_pipeline_of(selected, logistic()))
    assert_fast_and_exact(tmp_path / "slice", "linear")


def make_pipeline_of(*steps: Any) -> Any:
    from sklearn.pipeline import make_pipeline

    return make_pipeline(*steps)


def test_a_pipeline_fitted_on_an_array_serves_without_warnings(tmp_path: Path) -> None:
    """pytest turns warnings into errors: scikit-learn's 'X has feature names' would fail this."""
    from core.build.artifact import write_artifact

    table = make_table()
    X, y = table[NUMBERS], table["y"]
    pipeline = imputed(logistic()).fit(X.to_numpy(), y)
    assert not hasattr(pipeline, "feature_names_in_")
    meta = {"target": "y", "positive_class": 1, "threshold": 0.5, "metrics": {}, "training": {}}
    manifest = write_artifact(tmp_path / "array", pipeline, X, y, **meta)
    assert [f["nullable"] for f in manifest["features"]] == [True, True, True]
    fast, slow = load_model(tmp_path / "array"), load_model(tmp_path / "array", engine="sklearn")
    observation = {"Age": None, "Fare": 12.0, "Pclass": 3}
    assert fast.engine == "fast"
    assert abs(predict(observation, model=fast).proba - predict(observation, model=slow).proba) <= TOLERANCE


def test_fast_forms_serve_without_numpy_or_scikit_learn(tmp_path: Path) -> None:
    _, pipeline = tree_pipelines()["hist-gradient-boosting-native-categories"]
    fit_artifact(tmp_path / "hgb", pipeline())
    script = (
        "import sys\n"
        "from core.model import load_model\n"
        "from core.predict import predict\n"
        f"model = load_model({str(tmp_path / 'hgb')!r})\n"
        "p = predict({'Age': None, 'Fare': 7.5, 'Pclass': 3, 'Sex': 'male', 'Port': None}, model=model)\n"
        "print(model.engine, sorted(m for m in ('numpy', 'pandas', 'sklearn', 'scipy') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fast", "[]"]


def test_a_large_fast_form_is_compiled_once_and_then_read_from_its_cache(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    directory = tmp_path / "big"
    first = fit_artifact(directory, make_pipeline(columns(imputed()), RandomForestClassifier(60, random_state=0)))
    cached = sorted((directory / "__pycache__").glob("fast-*.bin"))
    assert len(cached) == 1
    assert cached[0].stat().st_mode & 0o777 == 0o644  # readable by whoever serves the artifact
    second = load_model(directory)
    rows = observations(first)
    assert [p.proba for p in predict_many(rows, model=second)] == [p.proba for p in predict_many(rows, model=first)]
    cached[0].write_bytes(b"not a code object")  # a damaged cache is compiled again, not trusted
    third = load_model(directory)
    assert [p.proba for p in predict_many(rows, model=third)] == [p.proba for p in predict_many(rows, model=first)]


def test_a_fast_form_file_of_an_unknown_format_is_a_clear_model_error(tmp_path: Path) -> None:
    from core.build.artifact import _atomic_write
    from core.errors import ModelError
    from core.model import FAST_FILE, MANIFEST_FILE, manifest_digest, sha256_file

    model = fit_artifact(tmp_path / "m", linear_pipelines()["imputer-median"]())
    data = json.loads((tmp_path / "m" / FAST_FILE).read_text())
    data["format"] = "fast-v99"
    (tmp_path / "m" / FAST_FILE).write_text(json.dumps(data))
    manifest = {**model.manifest, "fast_sha256": sha256_file(tmp_path / "m" / FAST_FILE)}
    manifest["manifest_sha256"] = manifest_digest(manifest)
    _atomic_write(tmp_path / "m" / MANIFEST_FILE, lambda f: f.write(json.dumps(manifest).encode()))
    with pytest.raises(ModelError, match="cannot be read by this version.*fast-v99.*rebuild the artifact"):
        load_model(tmp_path / "m")


@given(
    st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-3e38, max_value=3e38),
    st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-3e38, max_value=3e38),
)
def test_float32_thresholds_decide_as_scikit_learn_does(threshold: float, x: float) -> None:
    """Around each threshold (the float32 values on both sides, their midpoint and its float64
    neighbours, where rounding decides) and at a random point."""
    from core.build.compile.trees import float32_threshold

    low = np.float32(threshold)
    candidates = [x, threshold, float(low)]
    for a, b in ((low, np.nextafter(low, np.float32(np.inf))), (np.nextafter(low, np.float32(-np.inf)), low)):
        midpoint = (float(a) + float(b)) / 2
        candidates += [float(b), midpoint]
        candidates += [float(np.nextafter(midpoint, np.inf)), float(np.nextafter(midpoint, -np.inf))]
    moved = float32_threshold(threshold)
    for value in candidates:
        # As scikit-learn's Cython: the row's float32 widened to double, against the double threshold.
        assert (value <= moved) == (float(np.float32(value)) <= threshold), value
