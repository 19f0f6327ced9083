"""core.comparison against computations over the raw records: scikit-learn's metrics, SciPy's
chi-squared for McNemar, and DeLong's test written out directly on the scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2, norm
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from core import comparison, quality


def delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """AUC(b) - AUC(a), its standard error and the two-sided p-value, by DeLong's method on the
    raw scores (placement values by direct comparison of every positive with every negative)."""
    pos, neg = y == 1, y == 0
    m, n = pos.sum(), neg.sum()

    def placements(score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        sp, sn = score[pos][:, None], score[neg][None, :]
        kernel = (sp > sn) + 0.5 * (sp == sn)
        return kernel.mean(axis=1), kernel.mean(axis=0), float(kernel.mean())

    v10a, v01a, auc_a = placements(a)
    v10b, v01b, auc_b = placements(b)
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    se = math.sqrt(variance)
    difference = auc_b - auc_a
    return difference, se, 2 * norm.sf(abs(difference) / se)


def summed(y: np.ndarray, a: np.ndarray, b: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    counters: dict[str, float] = {}
    for yi, ai, bi in zip(y, a, b):
        quality.add(counters, comparison.paired_terms(float(ai), ai >= threshold, float(bi), bi >= threshold, int(yi)))
    return counters


def correlated_scores(seed: int, size: int, grid: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes and two models' probabilities that share a signal (so their AUCs correlate)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size)
    signal = y + rng.normal(0, 1.0, size)
    a = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.8, size))))
    b = 1 / (1 + np.exp(-(1.3 * signal + rng.normal(0, 0.5, size))))
    if grid is not None:  # scores at the centres of the grid's cells
        a, b = (np.floor(a * grid) + 0.5) / grid, (np.floor(b * grid) + 0.5) / grid
    return y, a, b


def test_on_scores_of_the_joint_grid_delongs_test_is_reproduced_exactly() -> None:
    y, a, b = correlated_scores(seed=1, size=400, grid=comparison.JOINT_BINS)
    difference, se, p_value = delong(y, a, b)

    auc = comparison.compare(summed(y, a, b))["roc_auc"]

    assert auc["champion"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert auc["challenger"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert auc["difference"] == pytest.approx(difference, abs=1e-12)
    assert auc["ci95"] == pytest.approx([difference - 1.959963984540054 * se, difference + 1.959963984540054 * se],
                                        abs=1e-9)
    assert auc["p_value"] == pytest.approx(p_value, abs=1e-9)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_on_raw_scores_the_bounded_counters_agree_with_delong_within_the_stated_tolerance(seed: int) -> None:
    """Binned at 1/1000 for the AUCs and 1/50 for the covariance: AUCs within 2e-3, the interval's
    bounds within 5e-3 and the p-value within 0.02 of DeLong on the raw scores (600 records)."""
    y, a, b = correlated_scores(seed=seed, size=600)
    difference, se, p_value = delong(y, a, b)

    auc = comparison.compare(summed(y, a, b))["roc_auc"]

    assert auc["champion"] == pytest.approx(roc_auc_score(y, a), abs=2e-3)
    assert auc["challenger"] == pytest.approx(roc_auc_score(y, b), abs=2e-3)
    assert auc["difference"] == pytest.approx(difference, abs=2e-3)
    assert auc["ci95"][0] == pytest.approx(difference - 1.959963984540054 * se, abs=5e-3)
    assert auc["ci95"][1] == pytest.approx(difference + 1.959963984540054 * se, abs=5e-3)
    assert auc["p_value"] == pytest.approx(p_value, abs=0.02)


LOSSES = {
    "brier_score": lambda y, p: (p - y) ** 2,
    "log_loss": lambda y, p: -(y * np.log(p) + (1 - y) * np.log(1 - p)),
}


def test_accuracy_brier_and_log_loss_match_scikit_learn_and_mcnemar_matches_scipy() -> None:
    y, a, b = correlated_scores(seed=5, size=500)
    figures = comparison.compare(summed(y, a, b))
    right_a, right_b = (a >= 0.5) == y, (b >= 0.5) == y
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())

    assert figures["records"] == 500 and figures["positives"] == int(y.sum())
    accuracy = figures["accuracy"]
    assert accuracy["champion"] == pytest.approx(accuracy_score(y, a >= 0.5), abs=1e-12)
    assert accuracy["challenger"] == pytest.approx(accuracy_score(y, b >= 0.5), abs=1e-12)
    assert (accuracy["only_champion_right"], accuracy["only_challenger_right"]) == (only_a, only_b)
    assert only_a + only_b >= comparison.EXACT_MCNEMAR_BELOW
    statistic = max(abs(only_a - only_b) - 1, 0) ** 2 / (only_a + only_b)
    assert accuracy["mcnemar_p_value"] == pytest.approx(chi2.sf(statistic, 1), abs=1e-12)
    for name, metric in (("brier_score", brier_score_loss), ("log_loss", log_loss)):
        figure = figures[name]
        assert figure["champion"] == pytest.approx(metric(y, a), abs=1e-9)
        assert figure["challenger"] == pytest.approx(metric(y, b), abs=1e-9)
        d = LOSSES[name](y, b) - LOSSES[name](y, a)
        half = 1.959963984540054 * d.std(ddof=1) / math.sqrt(len(d))
        assert figure["ci95"] == pytest.approx([d.mean() - half, d.mean() + half], abs=1e-9)


def test_a_replaced_outcome_is_moved_so_the_counters_equal_those_of_the_final_outcomes() -> None:
    y, a, b = correlated_scores(seed=6, size=50)
    counters: dict[str, float] = {}
    for yi, ai, bi in zip(y, a, b):
        args = (float(ai), ai >= 0.5, float(bi), bi >= 0.5)
        quality.add(counters, comparison.paired_outcome_increments(*args, None, 1 - int(yi)))
        quality.add(counters, comparison.paired_outcome_increments(*args, 1 - int(yi), int(yi)))

    kept = {k: v for k, v in counters.items() if abs(v) > 1e-9}
    expected = summed(y, a, b)
    assert kept.keys() == expected.keys()
    assert all(kept[k] == pytest.approx(expected[k], abs=1e-9) for k in expected)


def test_a_clearly_better_challenger_is_said_to_be_and_a_worse_one_is_not() -> None:
    y, a, b = correlated_scores(seed=7, size=800)

    assert delong(y, a, b)[2] < 0.05  # the data: b is better, significantly
    assert comparison.compare(summed(y, a, b))["challenger_better"] is True
    assert comparison.compare(summed(y, b, a))["challenger_better"] is False


def test_without_both_classes_or_records_the_figures_are_none_rather_than_invented() -> None:
    empty = comparison.compare({})
    y = np.ones(5, dtype=int)
    one_class = comparison.compare(summed(y, np.full(5, 0.7), np.full(5, 0.6)))

    assert empty["records"] == 0 and empty["accuracy"]["difference"] is None and empty["roc_auc"]["p_value"] is None
    assert one_class["roc_auc"]["difference"] is None and one_class["accuracy"]["champion"] == 1.0


@pytest.mark.parametrize("noise", [0.02, 0.1])
def test_close_models_keep_their_correlation_so_the_interval_is_delongs(noise: float) -> None:
    """A retrained challenger scores almost like the champion: most pairs of scores share a joint
    cell, where the correlation of their placement values must not be lost."""
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 1000)
    signal = y + rng.normal(0, 1.0, 1000)
    a = 1 / (1 + np.exp(-signal))
    b = 1 / (1 + np.exp(-(signal + rng.normal(0, noise, 1000))))
    difference, se, p_value = delong(y, a, b)

    auc = comparison.compare(summed(y, a, b))["roc_auc"]

    # The standard error within 5 % (it was twice DeLong's when cells kept only their means); the
    # difference within the 1/1000 binning of the scores, which is what moves a p-value this close.
    half = auc["ci95"][1] - auc["difference"]
    assert half == pytest.approx(1.959963984540054 * se, rel=0.05)
    assert auc["difference"] == pytest.approx(difference, abs=2e-4)
    if noise >= 0.1:
        assert auc["p_value"] == pytest.approx(p_value, abs=0.03)


def test_identical_models_have_no_difference_and_an_interval_of_zero() -> None:
    y, a, _ = correlated_scores(seed=9, size=300)

    auc = comparison.compare(summed(y, a, a))["roc_auc"]

    assert auc["difference"] == 0 and auc["p_value"] == pytest.approx(1.0)
    # Not exactly zero: within a cell the placement values are only nearly linear.
    assert auc["ci95"] == pytest.approx([0.0, 0.0], abs=1e-3)  # against ±0.03 for two models apart


@pytest.mark.parametrize(("only_champion", "only_challenger", "expected"),
                         [(1, 1, 1.0), (2, 1, 1.0), (5, 0, 0.0625), (0, 12, 2 / 2**12), (20, 30, None)])
def test_mcnemar_is_exact_for_few_discordant_pairs_and_never_below_one_when_they_balance(
    only_champion: int, only_challenger: int, expected: float | None
) -> None:
    counters = {"n": 100, "mc_11": 100 - only_champion - only_challenger, "mc_10": only_champion,
                "mc_01": only_challenger}

    p_value = comparison.compare(counters)["accuracy"]["mcnemar_p_value"]

    if expected is None:  # 50 discordant pairs: chi-squared with the continuity correction
        expected = chi2.sf(max(abs(only_challenger - only_champion) - 1, 0) ** 2 / 50, 1)
    assert p_value == pytest.approx(expected, abs=1e-12)


def test_a_difference_without_variance_gets_no_test_rather_than_a_certain_one() -> None:
    counters = summed(np.array([0, 1]), np.array([0.2, 0.7]), np.array([0.8, 0.3]))

    auc = comparison.compare(counters)["roc_auc"]

    assert auc["difference"] == -1.0 and auc["p_value"] is None and auc["ci95"] is None


def test_every_paired_counter_goes_to_a_bounded_counter_group() -> None:
    y, a, b = correlated_scores(seed=10, size=400)
    groups = {quality.counter_group(f"p|v|{name}") for name in summed(y, a, b)}

    assert groups <= set(quality.COUNTER_GROUPS)
    assert {g[0] for g in groups} == {"m", "h", "j"}
