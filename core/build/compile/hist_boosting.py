"""HistGradientBoostingClassifier as the boosting fast form, native categories included.

scikit-learn has no public view of these trees, so this reads private attributes: the
predictors (`_predictors`, each `nodes` array and `raw_left_cat_bitsets`), the baseline
(`_baseline_prediction`), the known categories' bitsets
(`_bin_mapper.make_known_categories_bitsets()`, what predict itself uses) and the ordinal
encoder it puts in front of categorical features (`_preprocessor`). They are
read once, when the artifact is built, and what they give is checked against predict_proba
on every check row: if a scikit-learn upgrade changes them, the artifact ships no fast form
(and says so) instead of a wrong one, and tests/compile fail loudly. Build time only.
"""

from __future__ import annotations

from typing import Any

from core.build.compile.features import Column, NotCompilable, Program, probe_encoder
from core.build.compile.trees import check_size
from core.forms.trees import MAX_DEPTH


def accepts(estimator: Any) -> bool:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return isinstance(estimator, HistGradientBoostingClassifier)


def input_columns(estimator: Any, columns: list[Column], program: Program) -> list[Column]:
    """The columns the trees split on: its ordinal encoder's codes first, then the numbers."""
    preprocessor = getattr(estimator, "_preprocessor", None)
    if preprocessor is None:
        return columns
    categorical = [bool(c) for c in estimator.is_categorical_]
    encoder = preprocessor.named_transformers_["encoder"]
    codes = probe_encoder(encoder, [c for c, cat in zip(columns, categorical) if cat], program)
    return codes + [c for c, cat in zip(columns, categorical) if not cat]


def compile_model(estimator: Any, width: int) -> dict[str, Any]:
    import numpy as np

    if estimator.n_trees_per_iteration_ != 1:
        raise NotCompilable("HistGradientBoostingClassifier with more than two classes has no fast form")
    known_bitsets, feature_map = estimator._bin_mapper.make_known_categories_bitsets()
    trees = []
    for (predictor,) in estimator._predictors:
        trees.append(_tree(predictor, known_bitsets, feature_map))
    check_size(trees)
    return {"baseline": float(np.ravel(estimator._baseline_prediction)[0]), "trees": trees}


def _tree(predictor: Any, known_bitsets: Any, feature_map: Any) -> dict[str, Any]:
    nodes = predictor.nodes
    if int(nodes["depth"].max()) > MAX_DEPTH:
        raise NotCompilable(f"a tree is deeper than {MAX_DEPTH} levels (set max_depth)")
    leaf = nodes["is_leaf"].astype(bool)
    tree: dict[str, Any] = {
        "feature": [0 if leaf[n] else int(f) for n, f in enumerate(nodes["feature_idx"])],
        "threshold": [0.0 if leaf[n] else float(t) for n, t in enumerate(nodes["num_threshold"])],
        "left": [-1 if leaf[n] else int(c) for n, c in enumerate(nodes["left"])],
        "right": [-1 if leaf[n] else int(c) for n, c in enumerate(nodes["right"])],
        "missing_left": [int(m) for m in nodes["missing_go_to_left"]],
        "value": [float(v) if leaf[n] else 0.0 for n, v in enumerate(nodes["value"])],
    }
    categorical = [n for n in range(len(nodes)) if not leaf[n] and nodes["is_categorical"][n]]
    if categorical:
        tree["categories"] = {
            str(n): _bits(predictor.raw_left_cat_bitsets[int(nodes["bitset_idx"][n])]) for n in categorical
        }
        features = {int(nodes["feature_idx"][n]) for n in categorical}
        tree["known"] = {str(f): _bits(known_bitsets[int(feature_map[f])]) for f in features}
    return tree


def _bits(bitset: Any) -> list[float]:
    """The values whose bit is set in a scikit-learn bitset (32-bit words, low bit first)."""
    return [float(32 * w + b) for w, word in enumerate(bitset) for b in range(32) if int(word) >> b & 1]

