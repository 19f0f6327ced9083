"""Tiny models fitted on data the tests make themselves (the fixtures in conftest.py use them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.build.artifact import write_artifact
from core.build.train import build_pipeline
from core.model import Model, load_model

SHARED_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "titanic.csv"


def make_table(n: int = 240, seed: int = 1) -> pd.DataFrame:
    """A small passengers-like table with nulls, categories and a learnable binary target."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(1, 70, n).round(1)
    age[rng.random(n) < 0.15] = np.nan
    fare = rng.gamma(2.0, 15.0, n).round(2)
    pclass = rng.integers(1, 4, n)
    sex = rng.choice(["female", "male"], n)
    port = rng.choice(["C", "Q", "S"], n, p=[0.2, 0.1, 0.7]).astype(object)
    port[rng.random(n) < 0.05] = None
    logit = 1.5 * (sex == "female") - 0.6 * (pclass - 2) - 0.02 * np.nan_to_num(age, nan=30) + 0.01 * fare
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"Age": age, "Fare": fare, "Pclass": pclass, "Sex": sex, "Port": port, "y": y})


def fit_artifact(out: Path, pipeline: Any | None = None, table: pd.DataFrame | None = None) -> Model:
    table = make_table() if table is None else table
    X, y = table.drop(columns=["y"]), table["y"]
    pipeline = (pipeline if pipeline is not None else build_pipeline(X)).fit(X, y)
    write_artifact(
        out,
        pipeline,
        X,
        y,
        target="y",
        positive_class=1,
        threshold=0.5,
        metrics={"n": len(y)},
        training={"command": "test"},
    )
    return load_model(out)


# A good observation for the tiny models.
GOOD = {"Age": 30.0, "Fare": 20.5, "Pclass": 2, "Sex": "female", "Port": "S"}
