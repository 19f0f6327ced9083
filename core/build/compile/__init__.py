"""Compilers from fitted scikit-learn pipelines to fast forms (core.forms). Build time only.

`compile_pipeline` splits a pipeline into its transformers (core.build.compile.features) and its final
estimator, and asks each family's compiler in FAMILIES, in order, whether it takes that
estimator. A family module has `accepts(estimator)` and `compile_model(estimator, width)`, and
may have `input_columns(estimator, columns, program)` for preprocessing the estimator does
itself. The artifact builder then checks the result against scikit-learn before shipping it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from core.build.compile import boosting, forest, hist_boosting, linear
from core.build.compile.features import NotCompilable, Program, compile_transformer, input_columns
from core.forms import FORMAT

__all__ = ["NotCompilable", "compile_pipeline"]

FAMILIES: list[tuple[str, ModuleType]] = [
    ("linear", linear),
    ("forest", forest),
    ("boosting", boosting),
    ("boosting", hist_boosting),
]
SUPPORTED = (
    "LogisticRegression, SGDClassifier(loss='log_loss'), DecisionTreeClassifier, RandomForestClassifier,"
    " ExtraTreesClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier"
)


def compile_pipeline(pipeline: Any, X: Any, schema: Any) -> dict[str, Any]:
    """The fast form of a fitted binary classifier (a Pipeline or a bare estimator), or NotCompilable."""
    transformers, estimator = _split(pipeline)
    found = [(name, module) for name, module in FAMILIES if module.accepts(estimator)]
    if not found:
        raise NotCompilable(f"{type(estimator).__name__} has no fast form (those that do: {SUPPORTED})")
    family, module = found[0]
    if len(getattr(estimator, "classes_", ())) != 2:
        raise NotCompilable(f"{type(estimator).__name__} is not a binary classifier")
    program = Program(len(schema.features))
    columns = input_columns(X, schema, program)
    for name, step in transformers:
        try:
            columns = compile_transformer(step, columns, program)
        except NotCompilable as e:
            raise NotCompilable(f"step {name!r}: {e}") from e
    if hasattr(module, "input_columns"):
        columns = module.input_columns(estimator, columns, program)
    text = [c.name or str(k) for k, c in enumerate(columns) if c.kind != "number"]
    if text:
        raise NotCompilable(f"text reaches {type(estimator).__name__} unencoded in columns {text}")
    return {
        "format": FORMAT,
        "family": family,
        "estimator": type(estimator).__name__,
        "inputs": len(schema.features),
        "steps": program.steps,
        "outputs": [c.slot for c in columns],
        "model": module.compile_model(estimator, len(columns)),
    }


def _split(pipeline: Any) -> tuple[list[tuple[str, Any]], Any]:
    """(named transformers, final estimator), nested pipelines opened."""
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline):
        return [], pipeline
    *head, (_, last) = [(n, s) for n, s in pipeline.steps if not _skipped(s)]
    inner, estimator = _split(last)
    return head + inner, estimator


def _skipped(step: Any) -> bool:
    return step is None or (isinstance(step, str) and step == "passthrough")
