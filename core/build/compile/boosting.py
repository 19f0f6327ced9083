"""GradientBoostingClassifier as the boosting fast form: its public `estimators_` trees and `init_`.

Build time only.
"""

from __future__ import annotations

from typing import Any

from core.build.compile.features import NotCompilable
from core.build.compile.trees import check_size, sklearn_tree


def accepts(estimator: Any) -> bool:
    from sklearn.ensemble import GradientBoostingClassifier

    return isinstance(estimator, GradientBoostingClassifier)


def compile_model(estimator: Any, width: int) -> dict[str, Any]:
    import numpy as np

    if estimator.loss != "log_loss":
        raise NotCompilable(f"GradientBoostingClassifier(loss={estimator.loss!r}) has no fast form")
    if estimator.init_ != "zero" and not _constant_init(estimator.init_):
        raise NotCompilable(f"GradientBoostingClassifier(init={type(estimator.init_).__name__}) has no fast form")
    rate = float(estimator.learning_rate)
    trees = []
    for (member,) in estimator.estimators_:
        value = member.tree_.value
        # scikit-learn adds learning_rate * leaf value, in float64, tree after tree.
        trees.append(sklearn_tree(member.tree_, lambda n, value=value: rate * float(value[n][0][0])))
    check_size(trees)
    # The initial estimator is constant (the prior's log-odds, or zero): its raw score is what
    # decision_function adds to the trees' sum for any row.
    row = np.zeros((1, width))
    stages = sum(rate * float(member.predict(row)[0]) for (member,) in estimator.estimators_)
    baseline = float(estimator.decision_function(row)[0]) - stages
    return {"baseline": baseline, "trees": trees}


def _constant_init(init: Any) -> bool:
    from sklearn.dummy import DummyClassifier

    return isinstance(init, DummyClassifier) and init.strategy == "prior"
