"""Paired comparison of a challenger with the champion on the same labelled records, from counters.

Every labelled record that both models scored adds `paired_terms` to named counters (kept, like
core.quality's, per version and day, so their cost never grows with the number of records);
`compare` turns the summed counters into the differences a data scientist asks for, challenger
minus champion:

- ROC AUC, with a 95 % confidence interval and a p-value from DeLong's test for two correlated
  ROC curves (DeLong, DeLong and Clarke-Pearson, 1988);
- accuracy, with McNemar's test (chi-squared with continuity correction) on the discordant pairs;
- Brier score and log loss, each with a 95 % interval from the paired differences' variance.

How the counters stay bounded, and how exact that is: each model's scores are kept as
histograms of `quality.ROC_BINS` bins per class (`ha<y>_<bin>`, `hb<y>_<bin>`), so both AUCs
and DeLong's variance terms are exact for scores rounded to 1/ROC_BINS. DeLong's covariance
term needs the joint distribution of the two scores over the positives and over the negatives:
it is kept as a JOINT_BINS × JOINT_BINS histogram per class (`j<y>_<a>_<b>`) with, per cell,
the sums of the two scores' fine-bin offsets within it and of their product (`jx`, `jy`,
`jz`); within a cell each placement value is taken as linear in its offset (fitted to the exact
values of the fine bins), which keeps the correlation of two close models inside a cell.
Exact for scores on the coarse grid; on raw scores the tests find the standard error within 5 %
of DeLong's and the AUCs within the 1/1000 binning (tests/core/test_comparison.py). At most
2 × (2 × ROC_BINS + 4 × JOINT_BINS²) + 9 counters per challenger and day, far fewer in practice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.quality import JOINT_BINS, LOG_LOSS_EPS, ROC_BINS, Counters, roc_bin

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
FINE_PER_CELL = ROC_BINS // JOINT_BINS  # ROC bins a side of one joint cell
# Fewer discordant pairs than this: McNemar's exact (binomial) test instead of chi-squared.
EXACT_MCNEMAR_BELOW = 25


def joint_bin(proba: float) -> int:
    """The coarse cell of `proba`: from its ROC bin, so that every ROC bin lies in one cell."""
    return roc_bin(proba) * JOINT_BINS // ROC_BINS


def _loss(proba: float, y: int) -> tuple[float, float]:
    p = min(max(proba, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS)
    return (proba - y) ** 2, -math.log(p) if y else -math.log(1 - p)


def paired_terms(champion: float, champion_class: bool, challenger: float, challenger_class: bool, y: int) -> Counters:
    """What one labelled record (true class `y`) scored by both models adds to their pair's counters."""
    sq_a, ll_a = _loss(champion, y)
    sq_b, ll_b = _loss(challenger, y)
    bin_a, bin_b = roc_bin(champion), roc_bin(challenger)
    offset_a, offset_b = bin_a % FINE_PER_CELL, bin_b % FINE_PER_CELL
    cells = f"{bin_a // FINE_PER_CELL}_{bin_b // FINE_PER_CELL}"
    return {
        "n": 1,
        "y": y,
        f"mc_{int(int(champion_class) == y)}{int(int(challenger_class) == y)}": 1,
        "sq_a": sq_a,
        "sq_b": sq_b,
        "sq_d2": (sq_b - sq_a) ** 2,
        "ll_a": ll_a,
        "ll_b": ll_b,
        "ll_d2": (ll_b - ll_a) ** 2,
        f"ha{y}_{bin_a}": 1,
        f"hb{y}_{bin_b}": 1,
        f"j{y}_{cells}": 1,
        # Offsets of the fine bins within the joint cell (see _covariance); zero terms left out.
        **({f"jx{y}_{cells}": offset_a} if offset_a else {}),
        **({f"jy{y}_{cells}": offset_b} if offset_b else {}),
        **({f"jz{y}_{cells}": offset_a * offset_b} if offset_a and offset_b else {}),
    }


def paired_outcome_increments(
    champion: float, champion_class: bool, challenger: float, challenger_class: bool, old: int | None, new: int
) -> Counters:
    """What setting the outcome from `old` (None: unknown) to `new` adds; a replaced outcome is subtracted."""
    counters = paired_terms(champion, champion_class, challenger, challenger_class, new)
    if old is not None:
        for key, value in paired_terms(champion, champion_class, challenger, challenger_class, old).items():
            counters[key] = counters.get(key, 0) - value
    return {k: v for k, v in counters.items() if v != 0}


def compare(counters: Mapping[str, float]) -> dict[str, Any]:
    """The comparison figures (challenger minus champion) from one pair's summed counters.

    Figures that need both classes (AUC) or at least two records (intervals) are None without them.
    """
    n = int(counters.get("n", 0))
    positives = int(counters.get("y", 0))
    negatives = n - positives
    result: dict[str, Any] = {"records": n, "positives": positives, "negatives": negatives}
    result["roc_auc"] = _auc_difference(counters, positives, negatives)
    result["accuracy"] = _accuracy_difference(counters, n)
    result["brier_score"] = _mean_difference(counters, n, "sq")
    result["log_loss"] = _mean_difference(counters, n, "ll")
    auc = result["roc_auc"]
    result["challenger_better"] = bool(
        auc["p_value"] is not None and auc["p_value"] < 0.05 and auc["difference"] > 0
    )
    return result


def _histogram(counters: Mapping[str, float], prefix: str) -> list[float]:
    return [counters.get(f"{prefix}_{b}", 0) for b in range(ROC_BINS)]


def _placements(own: list[float], other: list[float], below: bool) -> list[float]:
    """Per bin: the share of `other`'s records scored below (or, not `below`, above) a record of
    this bin, ties counted half: DeLong's placement values V10 (positives) and V01 (negatives)."""
    total = sum(other)
    values = [0.0] * len(own)
    if not total:
        return values
    order = range(len(own)) if below else range(len(own) - 1, -1, -1)
    passed = 0.0
    for b in order:
        values[b] = (passed + other[b] / 2) / total
        passed += other[b]
    return values


def _auc_difference(counters: Mapping[str, float], positives: int, negatives: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"champion": None, "challenger": None, "difference": None, "ci95": None,
                               "p_value": None}
    if not positives or not negatives:
        return figures
    structural = {}
    for model in ("a", "b"):
        pos, neg = _histogram(counters, f"h{model}1"), _histogram(counters, f"h{model}0")
        v10 = _placements(pos, neg, below=True)  # per positive: negatives scored below it
        v01 = _placements(neg, pos, below=False)  # per negative: positives scored above it
        auc = sum(p * v for p, v in zip(pos, v10)) / positives
        structural[model] = (auc, pos, neg, v10, v01)
    (auc_a, pos_a, neg_a, v10_a, v01_a), (auc_b, pos_b, neg_b, v10_b, v01_b) = structural["a"], structural["b"]
    s10 = {"aa": _variance(pos_a, v10_a, auc_a, positives), "bb": _variance(pos_b, v10_b, auc_b, positives)}
    s01 = {"aa": _variance(neg_a, v01_a, auc_a, negatives), "bb": _variance(neg_b, v01_b, auc_b, negatives)}
    s10["ab"] = _covariance(counters, 1, (pos_a, v10_a, auc_a), (pos_b, v10_b, auc_b), positives)
    s01["ab"] = _covariance(counters, 0, (neg_a, v01_a, auc_a), (neg_b, v01_b, auc_b), negatives)
    variance = (s10["aa"] + s10["bb"] - 2 * s10["ab"]) / positives + (s01["aa"] + s01["bb"] - 2 * s01["ab"]) / negatives
    difference = auc_b - auc_a
    figures.update(champion=auc_a, challenger=auc_b, difference=difference)
    if variance > 0 and positives > 1 and negatives > 1:
        se = math.sqrt(variance)
        figures["ci95"] = [difference - Z95 * se, difference + Z95 * se]
        figures["p_value"] = math.erfc(abs(difference) / se / math.sqrt(2))
    elif positives > 1 and negatives > 1 and difference == 0:  # the same ranking of every record
        figures["ci95"] = [0.0, 0.0]
        figures["p_value"] = 1.0
    # Else no variance to measure a difference against (too few records): no interval, no test.
    return figures


def _variance(counts: list[float], placements: list[float], auc: float, records: int) -> float:
    if records < 2:
        return 0.0
    return sum(c * (v - auc) ** 2 for c, v in zip(counts, placements)) / (records - 1)


def _cell_lines(counts: list[float], placements: list[float]) -> list[tuple[float, float]]:
    """Per coarse cell, the placement value as a line in the fine bin's offset in the cell,
    `value ≈ intercept + slope * offset`, fitted (least squares, weighted by the records of each
    fine bin) to the exact values of its fine bins."""
    lines = []
    for cell in range(JOINT_BINS):
        bins = range(cell * FINE_PER_CELL, (cell + 1) * FINE_PER_CELL)
        weight = sum(counts[b] for b in bins)
        if not weight:
            lines.append((0.0, 0.0))
            continue
        mean_offset = sum(counts[b] * (b - bins.start) for b in bins) / weight
        mean_value = sum(counts[b] * placements[b] for b in bins) / weight
        spread = sum(counts[b] * (b - bins.start - mean_offset) ** 2 for b in bins)
        slope = sum(counts[b] * (b - bins.start - mean_offset) * (placements[b] - mean_value) for b in bins) / spread \
            if spread else 0.0
        lines.append((mean_value - slope * mean_offset, slope))
    return lines


def _covariance(
    counters: Mapping[str, float],
    y: int,
    a: tuple[list[float], list[float], float],
    b: tuple[list[float], list[float], float],
    records: int,
) -> float:
    """DeLong's covariance of the two models' placement values over the records of class `y`.

    Within a joint cell each placement value is its cell's line (`_cell_lines`) at the record's
    offset, so the sum of products needs the cell's count and its sums of offsets and of their
    product (`j`, `jx`, `jy`, `jz`): exact when the placement values are linear within cells,
    and it keeps the correlation of two close models inside a cell.
    """
    if records < 2:
        return 0.0
    lines_a, lines_b = _cell_lines(a[0], a[1]), _cell_lines(b[0], b[1])
    prefix = f"j{y}_"
    total = 0.0
    for name, count in counters.items():
        if not (name.startswith(prefix) and count):
            continue
        cells = name[len(prefix):]
        cell_a, _, cell_b = cells.partition("_")
        (intercept_a, slope_a), (intercept_b, slope_b) = lines_a[int(cell_a)], lines_b[int(cell_b)]
        centred_a, centred_b = intercept_a - a[2], intercept_b - b[2]
        sum_a, sum_b = counters.get(f"jx{y}_{cells}", 0), counters.get(f"jy{y}_{cells}", 0)
        sum_ab = counters.get(f"jz{y}_{cells}", 0)
        total += (count * centred_a * centred_b + centred_a * slope_b * sum_b + centred_b * slope_a * sum_a
                  + slope_a * slope_b * sum_ab)
    return total / (records - 1)


def _accuracy_difference(counters: Mapping[str, float], n: int) -> dict[str, Any]:
    both = counters.get("mc_11", 0)
    only_champion, only_challenger = counters.get("mc_10", 0), counters.get("mc_01", 0)
    figures: dict[str, Any] = {"champion": None, "challenger": None, "difference": None,
                               "only_champion_right": int(only_champion), "only_challenger_right": int(only_challenger),
                               "mcnemar_p_value": None}
    if not n:
        return figures
    figures["champion"] = (both + only_champion) / n
    figures["challenger"] = (both + only_challenger) / n
    figures["difference"] = (only_challenger - only_champion) / n
    discordant = only_champion + only_challenger
    if discordant >= EXACT_MCNEMAR_BELOW:  # chi-squared, one degree of freedom, continuity-corrected
        statistic = max(abs(only_challenger - only_champion) - 1, 0) ** 2 / discordant
        figures["mcnemar_p_value"] = math.erfc(math.sqrt(statistic / 2))
    elif discordant:  # few discordant pairs: the exact binomial test, two-sided
        smaller = int(min(only_champion, only_challenger))
        tail = sum(math.comb(int(discordant), k) for k in range(smaller + 1)) / 2 ** int(discordant)
        figures["mcnemar_p_value"] = min(1.0, 2 * tail)
    return figures


def _mean_difference(counters: Mapping[str, float], n: int, name: str) -> dict[str, Any]:
    figures: dict[str, Any] = {"champion": None, "challenger": None, "difference": None, "ci95": None}
    if not n:
        return figures
    a, b = counters.get(f"{name}_a", 0) / n, counters.get(f"{name}_b", 0) / n
    difference = b - a
    figures.update(champion=a, challenger=b, difference=difference)
    if n > 1:
        variance = max(counters.get(f"{name}_d2", 0) - n * difference**2, 0.0) / (n - 1)
        half = Z95 * math.sqrt(variance / n)
        figures["ci95"] = [difference - half, difference + half]
    return figures
