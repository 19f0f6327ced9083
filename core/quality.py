"""Live model quality from recorded predictions and outcomes, from bounded-size aggregates.

Every prediction and every outcome adds a few numbers to named counters kept per model version
and UTC day (see `prediction_increments` and `outcome_increments`). Stores add them atomically
in the same write as the record, so the counters always equal a recomputation over the records.
`summarise` turns summed counters into figures; the cost depends on the number of days and
versions, never on the number of predictions.

Counter names (all values are numbers):
- `n`, `n_pos_pred`, `sum_proba`: predictions, predicted positives, sum of probabilities;
- `lab`, `lab_y`, `lab_proba`: predictions with a known outcome, positives among them, their
  summed probabilities; `cm_<y><c>`: confusion counts (true class y, predicted class c);
- `sq_err`, `log_loss`: sums of (p - y)² and of the log loss;
- `h<y>_<b>`: histogram of the probability in `ROC_BINS` bins per true class (ROC AUC, ROC curve);
- `cal_<b>_n`, `cal_<b>_p`, `cal_<b>_y`: the 10 calibration bins' counts, summed p and summed y;
- `f|<feature>|<bucket>`: drift counts per feature: `null`, `b<k>` (numeric bin on the
  training quantile edges), `c|<category>`, `unseen`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Any

from core.records import PredictionRecord
from core.schema import Feature, Schema

ROC_BINS = 1000
# A store that must keep one (version, day) row in several pieces (DynamoDB bills a write by the
# size of the whole item) keeps each of these groups together: the ROC histogram by hundreds of
# bins, everything else in "m". An outcome then touches "m" and one histogram group.
HISTOGRAM_GROUP_BINS = 100
# core.comparison's joint histogram of two models' scores: JOINT_BINS cells a side, grouped
# by JOINT_GROUP_CELLS rows of cells.
JOINT_BINS = 50
JOINT_GROUP_CELLS = 5
COUNTER_GROUPS = (
    "m",
    *(f"h{k}" for k in range(math.ceil(ROC_BINS / HISTOGRAM_GROUP_BINS))),
    *(f"j{k}" for k in range(math.ceil(JOINT_BINS / JOINT_GROUP_CELLS))),
)
CALIBRATION_BINS = 10
LOG_LOSS_EPS = 1e-15
# Population stability index: under 0.1 no shift, 0.1-0.2 moderate, over 0.2 significant.
PSI_ALERT = 0.2
# Share of served values in categories never seen in training that is worth a flag.
UNSEEN_ALERT = 0.05
PSI_FLOOR = 1e-4

Counters = dict[str, float]


def roc_bin(proba: float) -> int:
    return min(int(proba * ROC_BINS), ROC_BINS - 1)


def calibration_bin(proba: float) -> int:
    return min(int(proba * CALIBRATION_BINS), CALIBRATION_BINS - 1)


def numeric_bin(feature: Feature, value: float) -> int:
    """The bin of `value` on the feature's training quantile edges (0 .. len(edges))."""
    return bisect_right(feature.stats.get("bin_edges", []), value)


def drift_bucket(feature: Feature, value: Any) -> str:
    if value is None:
        return "null"
    if feature.kind == "category":
        return f"c|{value}" if value in feature.categories else "unseen"
    return f"b{numeric_bin(feature, value)}"


def prediction_increments(
    schema: Schema | None, observation: Mapping[str, Any], proba: float, predicted_class: bool
) -> Counters:
    """What one stored prediction adds (the observation was validated against `schema`); no
    drift counters without a schema (a model this process does not hold)."""
    counters: Counters = {"n": 1, "n_pos_pred": int(predicted_class), "sum_proba": proba}
    for feature in schema.features if schema else ():
        counters[f"f|{feature.name}|{drift_bucket(feature, observation.get(feature.name))}"] = 1
    return counters


def _outcome_terms(proba: float, predicted_class: bool, y: int) -> Counters:
    p = min(max(proba, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS)
    b = calibration_bin(proba)
    return {
        "lab": 1,
        "lab_y": y,
        "lab_proba": proba,
        f"cm_{y}{int(predicted_class)}": 1,
        "sq_err": (proba - y) ** 2,
        "log_loss": -math.log(p) if y else -math.log(1 - p),
        f"h{y}_{roc_bin(proba)}": 1,
        f"cal_{b}_n": 1,
        f"cal_{b}_p": proba,
        f"cal_{b}_y": y,
    }


def outcome_increments(proba: float, predicted_class: bool, old: int | None, new: int) -> Counters:
    """What setting the outcome from `old` (None: unknown) to `new` adds; a replaced outcome is subtracted."""
    counters = _outcome_terms(proba, predicted_class, new)
    if old is not None:
        for key, value in _outcome_terms(proba, predicted_class, old).items():
            counters[key] = counters.get(key, 0) - value
    return {k: v for k, v in counters.items() if v != 0}


def outcome_counters(record: PredictionRecord, true_class: int) -> Counters:
    """What setting the outcome of the stored `record` to `true_class` adds: what stores are handed."""
    return outcome_increments(record.proba, record.predicted_class, record.true_class, true_class)


def counter_group(name: str) -> str:
    """The group of COUNTER_GROUPS that counter `name` belongs to; a challenger's counters
    (core.shadows' `s|<version>|` and `p|<version>|`) go with the counters they are named as."""
    if name[:2] in ("s|", "p|"):
        name = name.split("|", 2)[-1]
    if name[:1] == "h":
        rest = name[2:] if name[1:2] in ("a", "b") else name[1:]  # core.comparison's per-model bins
        if rest[:2] in ("0_", "1_") and rest[2:].isdigit():
            return f"h{int(rest[2:]) // HISTOGRAM_GROUP_BINS}"
    if name[:1] == "j":
        rest = name[2:] if name[1:2] in ("x", "y", "z") else name[1:]  # the joint cells' offset sums
        row = rest[2:].partition("_")[0] if rest[:2] in ("0_", "1_") else ""
        if row.isdigit():
            return f"j{int(row) // JOINT_GROUP_CELLS}"
    return "m"


def add(total: Counters, increments: Mapping[str, float]) -> Counters:
    for key, value in increments.items():
        total[key] = total.get(key, 0) + value
    return total


def merged(parts: Iterable[Mapping[str, float]]) -> Counters:
    total: Counters = {}
    for part in parts:
        add(total, part)
    return total


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def roc_auc(counters: Mapping[str, float]) -> float | None:
    """Area under the ROC curve of the binned probabilities (ties within a bin count half)."""
    positives, negatives = (
        counters.get("cm_10", 0) + counters.get("cm_11", 0),
        counters.get("cm_00", 0) + counters.get("cm_01", 0),
    )
    if not positives or not negatives:
        return None
    below = 0.0
    area = 0.0
    for b in range(ROC_BINS):
        neg, pos = counters.get(f"h0_{b}", 0), counters.get(f"h1_{b}", 0)
        area += pos * (below + neg / 2)
        below += neg
    return area / (positives * negatives)


def roc_curve(counters: Mapping[str, float], points: int = 50) -> list[dict[str, float]]:
    """(false positive rate, true positive rate) at thresholds on the bin edges, high to low."""
    positives = sum(counters.get(f"h1_{b}", 0) for b in range(ROC_BINS))
    negatives = sum(counters.get(f"h0_{b}", 0) for b in range(ROC_BINS))
    if not positives or not negatives:
        return []
    curve = [{"threshold": 1.0, "fpr": 0.0, "tpr": 0.0}]
    tp = fp = 0.0
    step = max(1, ROC_BINS // points)
    for b in range(ROC_BINS - 1, -1, -1):
        tp += counters.get(f"h1_{b}", 0)
        fp += counters.get(f"h0_{b}", 0)
        if b % step == 0:
            curve.append({"threshold": b / ROC_BINS, "fpr": fp / negatives, "tpr": tp / positives})
    return curve


def classification(counters: Mapping[str, float]) -> dict[str, Any]:
    """Figures on the predictions whose outcome is known, at each version's threshold."""
    tn, fp, fn, tp = (counters.get(k, 0) for k in ("cm_00", "cm_01", "cm_10", "cm_11"))
    labeled = counters.get("lab", 0)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall) if precision is not None and recall is not None else None
    calibration = []
    for b in range(CALIBRATION_BINS):
        n = counters.get(f"cal_{b}_n", 0)
        calibration.append(
            {
                "bin": [b / CALIBRATION_BINS, (b + 1) / CALIBRATION_BINS],
                "count": int(n),
                "mean_proba": _ratio(counters.get(f"cal_{b}_p", 0), n),
                "observed_rate": _ratio(counters.get(f"cal_{b}_y", 0), n),
            }
        )
    return {
        "labeled": int(labeled),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "accuracy": _ratio(tp + tn, labeled),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(counters),
        "brier_score": _ratio(counters.get("sq_err", 0), labeled),
        "log_loss": _ratio(counters.get("log_loss", 0), labeled),
        "base_rate": _ratio(counters.get("lab_y", 0), labeled),
        "mean_proba": _ratio(counters.get("lab_proba", 0), labeled),
        "calibration": calibration,
    }


def psi(expected: Mapping[str, float], actual: Mapping[str, float]) -> float:
    """Population stability index between two share distributions over the same buckets."""
    total = 0.0
    for bucket in set(expected) | set(actual):
        e, a = max(expected.get(bucket, 0.0), PSI_FLOOR), max(actual.get(bucket, 0.0), PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def training_shares(feature: Feature) -> dict[str, float]:
    """The training distribution over the same buckets `drift_bucket` uses."""
    null = float(feature.stats.get("null_share", 0.0))
    if feature.kind == "category":
        shares = {f"c|{k}": v * (1 - null) for k, v in feature.stats.get("category_shares", {}).items()}
    else:
        shares = {f"b{k}": v * (1 - null) for k, v in enumerate(feature.stats.get("bin_shares", []))}
    if null:
        shares["null"] = null
    return shares


def drift_buckets(feature: Feature) -> list[str]:
    """Every bucket `drift_bucket` can put a value of `feature` in."""
    if feature.kind == "category":
        return [*(f"c|{c}" for c in feature.categories), "unseen", "null"]
    return [*(f"b{k}" for k in range(len(feature.stats.get("bin_edges", [])) + 1)), "null"]


def drift(schema: Schema, counters: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per feature: served vs training distribution, PSI, null and unseen shares, and flags."""
    served = counters.get("n", 0)
    report = []
    for feature in schema.features:
        # Looked up by name: the cost follows the schema, not how many counters are filled.
        found = ((bucket, counters.get(f"f|{feature.name}|{bucket}", 0)) for bucket in drift_buckets(feature))
        counts = {bucket: count for bucket, count in found if count}
        shares = {k: v / served for k, v in counts.items()} if served else {}
        expected = training_shares(feature)
        value = psi(expected, shares) if served else None
        unseen = shares.get("unseen", 0.0)
        flags = []
        if value is not None and value > PSI_ALERT:
            flags.append(f"PSI {value:.2f} > {PSI_ALERT}")
        if unseen > UNSEEN_ALERT:
            flags.append(f"unseen categories {unseen:.0%} > {UNSEEN_ALERT:.0%}")
        report.append(
            {
                "feature": feature.name,
                "kind": feature.kind,
                "psi": value,
                "null_share": {"training": expected.get("null", 0.0), "served": shares.get("null", 0.0)},
                "unseen_share": unseen if feature.kind == "category" else None,
                "buckets": [
                    {"bucket": k, "training": expected.get(k, 0.0), "served": shares.get(k, 0.0)}
                    for k in sorted(set(expected) | set(shares), key=_bucket_order)
                ],
                "flagged": bool(flags),
                "flags": flags,
            }
        )
    return report


def _bucket_order(bucket: str) -> tuple[int, Any]:
    if bucket.startswith("b") and bucket[1:].isdigit():
        return (0, int(bucket[1:]))
    return (1, bucket)


def summarise(schema: Schema | None, counters: Mapping[str, float]) -> dict[str, Any]:
    """Everything `/stats` shows for one model version, from its summed counters."""
    summary: dict[str, Any] = {
        "predictions": int(counters.get("n", 0)),
        "predicted_positive": int(counters.get("n_pos_pred", 0)),
        "mean_proba_served": _ratio(counters.get("sum_proba", 0), counters.get("n", 0)),
        "outcomes": classification(counters),
        "roc_curve": roc_curve(counters),
    }
    summary["drift"] = drift(schema, counters) if schema is not None else []
    return summary


# The only counters `daily_series` reads: stores read just these for the per-day figures.
DAILY_COUNTERS = ("n", "lab", "cm_00", "cm_11")


def daily_series(days: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Per UTC day: volume, outcome count and accuracy."""
    series = []
    for day in sorted(days):
        c = days[day]
        labeled = c.get("lab", 0)
        series.append(
            {
                "day": day,
                "predictions": int(c.get("n", 0)),
                "outcomes": int(labeled),
                "accuracy": _ratio(c.get("cm_00", 0) + c.get("cm_11", 0), labeled),
            }
        )
    return series
