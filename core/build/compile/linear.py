"""LogisticRegression and SGDClassifier(loss="log_loss") as the linear fast form. Build time only."""

from __future__ import annotations

from typing import Any

from core.build.compile.features import NotCompilable


def accepts(estimator: Any) -> bool:
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    if isinstance(estimator, SGDClassifier):
        return estimator.loss == "log_loss"
    return isinstance(estimator, LogisticRegression)


def compile_model(estimator: Any, width: int) -> dict[str, Any]:
    coef = estimator.coef_
    if coef.shape != (1, width):
        raise NotCompilable(f"{type(estimator).__name__} has {coef.shape[1]} coefficients for {width} columns")
    return {"intercept": float(estimator.intercept_[0]), "weights": [float(w) for w in coef[0]]}
