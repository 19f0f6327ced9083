"""core.quality's figures, checked against scikit-learn's metrics on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from core import quality
from core.quality import ROC_BINS, outcome_increments, prediction_increments, summarise
from core.schema import Feature, Schema

SCHEMA = Schema(
    (
        Feature(
            name="x",
            kind="number",
            dtype="float64",
            nullable=True,
            stats={"null_share": 0.1, "bin_edges": [0.0, 1.0], "bin_shares": [0.3, 0.4, 0.3]},
        ),
        Feature(
            name="c",
            kind="category",
            dtype="object",
            nullable=True,
            categories=("a", "b"),
            stats={"null_share": 0.0, "category_shares": {"a": 0.5, "b": 0.5}},
        ),
    )
)


def simulate(n: int = 2000, seed: int = 0) -> tuple[dict[str, float], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = rng.beta(2, 3, n)
    y = (rng.random(n) < proba).astype(int)
    predicted = proba >= 0.5
    counters: dict[str, float] = {}
    for p, c, t in zip(proba, predicted, y):
        quality.add(counters, prediction_increments(SCHEMA, {"x": float(p), "c": "a"}, float(p), bool(c)))
        quality.add(counters, outcome_increments(float(p), bool(c), None, int(t)))
    return counters, proba, y, predicted


def test_classification_figures_match_scikit_learn() -> None:
    counters, proba, y, predicted = simulate()
    out = summarise(SCHEMA, counters)["outcomes"]
    assert out["labeled"] == len(y)
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted).ravel()
    assert out["confusion_matrix"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert out["precision"] == pytest.approx(skm.precision_score(y, predicted))
    assert out["recall"] == pytest.approx(skm.recall_score(y, predicted))
    assert out["f1"] == pytest.approx(skm.f1_score(y, predicted))
    assert out["brier_score"] == pytest.approx(skm.brier_score_loss(y, proba))
    assert out["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert out["base_rate"] == pytest.approx(y.mean()) and out["mean_proba"] == pytest.approx(proba.mean())


def test_roc_auc_equals_scikit_learn_on_the_binned_probabilities_and_is_close_on_the_raw_ones() -> None:
    counters, proba, y, _ = simulate()
    binned = np.minimum((proba * ROC_BINS).astype(int), ROC_BINS - 1)
    assert quality.roc_auc(counters) == pytest.approx(skm.roc_auc_score(y, binned), abs=1e-12)
    assert quality.roc_auc(counters) == pytest.approx(skm.roc_auc_score(y, proba), abs=2e-3)


def test_calibration_bins_hold_the_mean_probability_and_observed_rate() -> None:
    counters, proba, y, _ = simulate()
    table = summarise(SCHEMA, counters)["outcomes"]["calibration"]
    assert sum(row["count"] for row in table) == len(y)
    third = (proba >= 0.3) & (proba < 0.4)
    assert table[3]["mean_proba"] == pytest.approx(proba[third].mean())
    assert table[3]["observed_rate"] == pytest.approx(y[third].mean())


def test_replacing_an_outcome_moves_it_instead_of_counting_it_twice() -> None:
    counters: dict[str, float] = {}
    quality.add(counters, outcome_increments(0.8, True, None, 0))
    quality.add(counters, outcome_increments(0.8, True, 0, 1))
    assert {k: v for k, v in counters.items() if v} == pytest.approx(outcome_increments(0.8, True, None, 1))


def test_drift_flags_a_shifted_feature_and_unseen_categories() -> None:
    counters: dict[str, float] = {}
    for _ in range(90):
        quality.add(counters, prediction_increments(SCHEMA, {"x": 5.0, "c": "zzz"}, 0.5, True))
    for _ in range(10):
        quality.add(counters, prediction_increments(SCHEMA, {"x": None, "c": None}, 0.5, True))
    report = {r["feature"]: r for r in quality.drift(SCHEMA, counters)}
    assert report["x"]["flagged"] and report["x"]["psi"] > quality.PSI_ALERT
    assert report["x"]["null_share"] == {"training": 0.1, "served": 0.1}
    assert report["c"]["unseen_share"] == pytest.approx(0.9) and report["c"]["flagged"]


def test_drift_of_a_matching_population_is_not_flagged() -> None:
    counters: dict[str, float] = {}
    for x, c, times in [(-1.0, "a", 15), (0.5, "b", 20), (2.0, "a", 15), (None, "b", 5), (0.5, "a", 0)]:
        for _ in range(times):
            quality.add(counters, prediction_increments(SCHEMA, {"x": x, "c": c}, 0.5, True))
    report = {r["feature"]: r for r in quality.drift(SCHEMA, counters)}
    assert report["x"]["psi"] < 0.1 and not report["x"]["flagged"]
    assert math.isclose(sum(b["served"] for b in report["x"]["buckets"]), 1.0)
