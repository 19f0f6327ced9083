"""Tiny models fitted in a temporary directory, on data the tests make themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.model import Model, load_model
from tests.core.fitting import fit_artifact


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "model"
    fit_artifact(out)
    return out


@pytest.fixture()
def tiny_model(tiny_dir: Path) -> Model:
    return load_model(tiny_dir)


@pytest.fixture(scope="session")
def sklearn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline no fast form reproduces (a QuantileTransformer): served by scikit-learn."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, QuantileTransformer

    columns = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), QuantileTransformer(n_quantiles=50)),
                ["Age", "Fare", "Pclass"],
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["Sex", "Port"],
            ),
        ]
    )
    out = tmp_path_factory.mktemp("sklearn") / "model"
    fit_artifact(out, make_pipeline(columns, RandomForestClassifier(n_estimators=20, random_state=0)))
    return out

