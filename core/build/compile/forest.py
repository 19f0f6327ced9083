"""DecisionTreeClassifier, RandomForestClassifier and ExtraTreesClassifier as the forest fast form.

Reads each tree's public `tree_` arrays. Build time only.
"""

from __future__ import annotations

from typing import Any

from core.build.compile.trees import check_size, sklearn_tree


def accepts(estimator: Any) -> bool:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    return isinstance(estimator, (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier))


def compile_model(estimator: Any, width: int) -> dict[str, Any]:
    members = getattr(estimator, "estimators_", [estimator])
    trees = []
    for member in members:
        value = member.tree_.value

        def positive_share(node: int, value: Any = value) -> float:
            # As DecisionTreeClassifier.predict_proba: the leaf's class weights over their sum.
            weights = value[node][0]
            total = float(weights.sum())
            return float(weights[1]) / total if total else 0.0

        trees.append(sklearn_tree(member.tree_, positive_share))
    check_size(trees)
    return {"trees": trees}
