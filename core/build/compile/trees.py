"""scikit-learn's fitted trees as fast-form node arrays (see core.forms.trees). Build time only."""

from __future__ import annotations

from typing import Any

from core.build.compile.features import NotCompilable
from core.forms.trees import MAX_DEPTH

# Generated code costs about 20 µs per node to compile (cached after the first load) and a few
# dozen bytes of JSON; past this a forest is better served by scikit-learn.
MAX_NODES = 400_000


def float32_threshold(threshold: float) -> float:
    """The float64 t' such that `x <= t'` is exactly `float32(x) <= threshold`.

    scikit-learn's trees cast each row to float32 before comparing it with a float64 threshold.
    Rounding to float32 is monotonic, so the float64 values whose float32 is at most the
    threshold are those up to the midpoint between T, the largest float32 at most the threshold,
    and the next float32; the midpoint itself rounds (to even) to whichever of the two is even.
    """
    import numpy as np

    t = np.float64(threshold)
    low = np.float32(t)
    if np.float64(low) > t:
        low = np.nextafter(low, np.float32(-np.inf))
    high = np.nextafter(low, np.float32(np.inf))
    if np.isinf(high):
        return float(np.inf)
    midpoint = (np.float64(low) + np.float64(high)) / 2
    low_is_even = int(low.view(np.uint32)) % 2 == 0
    return float(midpoint if low_is_even else np.nextafter(midpoint, -np.inf))


def sklearn_tree(tree: Any, leaf_value: Any) -> dict[str, Any]:
    """A fitted `tree_` (sklearn.tree's public Tree, which compares float32 rows) as node arrays,
    thresholds moved for float64 rows; `leaf_value(node)` gives a leaf's value."""
    if tree.max_depth > MAX_DEPTH:
        raise NotCompilable(f"a tree is {tree.max_depth} levels deep; fast forms go to {MAX_DEPTH} (set max_depth)")
    left = [int(n) for n in tree.children_left]
    missing = getattr(tree, "missing_go_to_left", None)
    return {
        "feature": [int(f) if left[n] >= 0 else 0 for n, f in enumerate(tree.feature)],
        "threshold": [
            float32_threshold(t) if left[n] >= 0 else 0.0
            for n, t in enumerate(tree.threshold)
        ],
        "left": left,
        "right": [int(n) for n in tree.children_right],
        "missing_left": [int(m) for m in missing] if missing is not None else [0] * len(left),
        "value": [float(leaf_value(n)) if left[n] < 0 else 0.0 for n in range(len(left))],
    }


def check_size(trees: list[dict[str, Any]]) -> None:
    nodes = sum(len(t["left"]) for t in trees)
    if nodes > MAX_NODES:
        raise NotCompilable(
            f"the trees have {nodes:,} nodes; fast forms go to {MAX_NODES:,} (fewer trees, max_depth or max_leaf_nodes)"
        )
