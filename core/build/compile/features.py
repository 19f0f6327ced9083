"""Compiling a pipeline's transformers into fast-form steps (see core.forms.steps). Build time only.

Each supported transformer maps the columns it receives to the columns it produces, adding steps
to a `Program`. Numeric transformers are read from their fitted attributes; encoders of
categories (any of them: their domain is finite) are probed, column by column, with every value
training saw, one unseen value and a missing one, and become lookups. Anything else raises
NotCompilable naming the step, so that the artifact says what prevented the fast form.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

# A numeric column with at most this many distinct training values can be probed as categories.
MAX_PROBED_VALUES = 1000
UNSEEN_TEXT = "\x00never seen in training"
SUPPORTED_STEPS = (
    "Pipeline, ColumnTransformer, SimpleImputer, StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler,"
    " FunctionTransformer(np.log1p or none), PolynomialFeatures(degree=2), KBinsDiscretizer, OneHotEncoder,"
    " OrdinalEncoder, TargetEncoder, category_encoders.OneHotEncoder"
)


class NotCompilable(Exception):
    """The pipeline has a step no fast form reproduces; the message says which and what would."""


@dataclass(frozen=True)
class Column:
    """One column flowing through the pipeline: its slot, whether it holds numbers or categories,
    its name (when the pipeline works on DataFrames) and the values training gave it (when few)."""

    slot: int
    kind: str  # "number" or "category"
    name: str | None
    domain: tuple[Any, ...] | None


class Program:
    """The steps being compiled; each new step is a new slot."""

    def __init__(self, n_inputs: int) -> None:
        self.n_inputs = n_inputs
        self.steps: list[list[Any]] = []

    def add(self, *step: Any) -> int:
        self.steps.append([step[0], *[_json(a) for a in step[1:]]])
        return self.n_inputs + len(self.steps) - 1

    def derived(self, column: Column, *step: Any, kind: str = "number", domain: Any = None) -> Column:
        return Column(self.add(*step), kind, column.name, domain)


def input_columns(X: Any, schema: Any, program: Program) -> list[Column]:
    """The observation's features as the pipeline first sees them (numbers: None -> NaN)."""
    columns = []
    for k, feature in enumerate(schema.features):
        values = X[feature.name].dropna().unique()
        domain = tuple(plain(v) for v in values) if len(values) <= MAX_PROBED_VALUES else None
        if feature.kind == "category":
            columns.append(Column(k, "category", feature.name, domain))
        else:
            columns.append(Column(program.add("number", k), "number", feature.name, domain))
    return columns


def compile_transformer(step: Any, columns: list[Column], program: Program) -> list[Column]:
    """The columns `step` (fitted) outputs from `columns`, or NotCompilable."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        KBinsDiscretizer,
        MaxAbsScaler,
        MinMaxScaler,
        OneHotEncoder,
        OrdinalEncoder,
        PolynomialFeatures,
        RobustScaler,
        StandardScaler,
        TargetEncoder,
    )

    if step is None or (isinstance(step, str) and step == "passthrough"):
        return columns
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            columns = compile_transformer(inner, columns, program)
        return columns
    if isinstance(step, ColumnTransformer):
        return _column_transformer(step, columns, program)
    if isinstance(step, SimpleImputer):
        return _imputer(step, columns, program)
    if isinstance(step, (StandardScaler, RobustScaler, MaxAbsScaler, MinMaxScaler)):
        return _scaler(step, _numbers(step, columns), program)
    if isinstance(step, FunctionTransformer):
        return _function(step, columns, program)
    if isinstance(step, PolynomialFeatures):
        return _polynomial(step, _numbers(step, columns), program)
    if isinstance(step, KBinsDiscretizer):
        return _bins(step, _numbers(step, columns), program)
    if isinstance(step, (OneHotEncoder, OrdinalEncoder, TargetEncoder)) or _is_category_encoders_one_hot(step):
        return probe_encoder(step, columns, program)
    raise NotCompilable(f"{type(step).__name__} has no fast form (steps that have one: {SUPPORTED_STEPS})")


def _is_category_encoders_one_hot(step: Any) -> bool:
    return type(step).__module__.startswith("category_encoders") and type(step).__name__ == "OneHotEncoder"


def _numbers(step: Any, columns: list[Column]) -> list[Column]:
    strings = [c.name or str(k) for k, c in enumerate(columns) if c.kind != "number"]
    if strings:
        raise NotCompilable(f"{type(step).__name__} receives text columns {strings}")
    return columns


def _column_transformer(ct: Any, columns: list[Column], program: Program) -> list[Column]:
    out: list[Column] = []
    names = [str(n) for n in getattr(ct, "feature_names_in_", [])]
    for _, transformer, spec in ct.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        selected = [columns[k] for k in _selected(spec, names, len(columns))]
        if not selected:
            continue
        out += compile_transformer(transformer, selected, program)
    return out


def _selected(spec: Any, names: list[str], width: int) -> list[int]:
    import numpy as np

    if callable(spec) or isinstance(spec, str):
        raise NotCompilable("a ColumnTransformer selects its columns with a callable or a single name")
    if isinstance(spec, slice):
        if isinstance(spec.start, str) or isinstance(spec.stop, str):  # labels, both ends included
            start = names.index(spec.start) if spec.start is not None else 0
            stop = names.index(spec.stop) + 1 if spec.stop is not None else width
            return list(range(start, stop))[:: spec.step or 1]
        return list(range(width))[spec]
    items = list(spec)
    if items and all(isinstance(i, (bool, np.bool_)) for i in items):
        return [k for k, keep in enumerate(items) if keep]
    if all(isinstance(i, str) for i in items):
        return [names.index(i) for i in items]
    return [int(i) for i in items]


def _imputer(step: Any, columns: list[Column], program: Program) -> list[Column]:
    missing = step.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)):
        raise NotCompilable(f"SimpleImputer(missing_values={missing!r}): only NaN is reproduced")
    if len(step.statistics_) != len(columns):
        raise NotCompilable("SimpleImputer dropped a column that was empty in training")
    out = []
    for column, statistic in zip(columns, step.statistics_):
        value = plain(statistic)
        if isinstance(value, float) and math.isnan(value):
            raise NotCompilable(f"SimpleImputer has no value for column {column.name!r} (empty in training)")
        domain = None if column.domain is None else (*column.domain, value)
        if column.kind == "category":
            out.append(program.derived(column, "fill_category", column.slot, value, kind="category", domain=domain))
        elif isinstance(value, str):
            raise NotCompilable(f"SimpleImputer fills the numbers of {column.name!r} with text")
        else:
            out.append(program.derived(column, "fill", column.slot, value, domain=domain))
    if step.add_indicator:
        for k in step.indicator_.features_:
            out.append(program.derived(columns[int(k)], "is_missing", columns[int(k)].slot, domain=(0.0, 1.0)))
    return out


def _scaler(step: Any, columns: list[Column], program: Program) -> list[Column]:
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler

    n = len(columns)
    if isinstance(step, MinMaxScaler):
        if step.clip:
            raise NotCompilable("MinMaxScaler(clip=True) has no fast form")
        return [program.derived(c, "scale", c.slot, step.scale_[k], step.min_[k]) for k, c in enumerate(columns)]
    if isinstance(step, MaxAbsScaler):
        subtract, divide = [0.0] * n, step.scale_
    elif isinstance(step, RobustScaler):
        subtract = step.center_ if step.with_centering else [0.0] * n
        divide = step.scale_ if step.with_scaling else [1.0] * n
    else:
        subtract = step.mean_ if step.with_mean else [0.0] * n
        divide = step.scale_ if step.with_std else [1.0] * n
    return [program.derived(c, "affine", c.slot, subtract[k], divide[k]) for k, c in enumerate(columns)]


def _function(step: Any, columns: list[Column], program: Program) -> list[Column]:
    import numpy as np

    if step.kw_args:
        raise NotCompilable("FunctionTransformer with kw_args has no fast form")
    if step.func is None:
        return columns
    if step.func is np.log1p:
        return [program.derived(c, "log1p", c.slot) for c in _numbers(step, columns)]
    name = getattr(step.func, "__name__", step.func)
    raise NotCompilable(f"FunctionTransformer({name!r}) has no fast form (only np.log1p or identity)")


def _polynomial(step: Any, columns: list[Column], program: Program) -> list[Column]:
    out = []
    for powers in step.powers_:
        used = [(k, int(p)) for k, p in enumerate(powers) if p]
        if sum(p for _, p in used) > 2:
            raise NotCompilable(f"PolynomialFeatures(degree={step.degree}): only degree 2 has a fast form")
        if not used:
            out.append(Column(program.add("constant", 1.0), "number", None, (1.0,)))
        elif used == [(used[0][0], 1)]:
            out.append(columns[used[0][0]])
        else:
            a = used[0][0]
            b = used[1][0] if len(used) == 2 else a
            out.append(Column(program.add("product", columns[a].slot, columns[b].slot), "number", None, None))
    return out


def _bins(step: Any, columns: list[Column], program: Program) -> list[Column]:
    out = []
    for k, column in enumerate(columns):
        n_bins = int(step.n_bins_[k])
        binned = program.derived(column, "bin", column.slot, list(step.bin_edges_[k][1:-1]),
                                 domain=tuple(float(b) for b in range(n_bins)))
        if step.encode == "ordinal":
            out.append(binned)
        else:
            out += [program.derived(binned, "lookup", binned.slot, [[float(b), 1.0]], 0.0, 0.0, domain=(0.0, 1.0))
                    for b in range(n_bins)]
    return out


def probe_encoder(step: Any, columns: list[Column], program: Program) -> list[Column]:
    """Any encoder that treats each column on its own, read by transforming probe rows.

    Each column is varied in turn over the values training gave it (and the encoder's own
    categories), one value it never saw and a missing one, the others held at their first value.
    An output that changes with one column becomes a lookup of that column; one that changes
    with none is a constant; a number column passed through unchanged stays itself.
    """
    import numpy as np

    domains = [_probe_values(step, k, c) for k, c in enumerate(columns)]
    base = [d[0] for d in domains]
    rows: list[list[Any]] = [list(base)]
    owners: list[int] = [-1]
    for k, domain in enumerate(domains):
        for value in domain[1:]:
            rows.append(base[:k] + [value] + base[k + 1 :])
            owners.append(k)
    with warnings.catch_warnings():
        # e.g. OneHotEncoder(drop=...) warns of the unseen value, which the probe sends on purpose.
        warnings.simplefilter("ignore", UserWarning)
        try:
            out = np.asarray(_dense(step.transform(_frame(step, columns, rows))), dtype=float)
        except ValueError as e:
            raise NotCompilable(
                f"{type(step).__name__} cannot encode a value training did not see, or a missing one (it raises"
                " ValueError); with handle_unknown='ignore' (or 'use_encoded_value') it could"
            ) from e
    result = []
    for j in range(out.shape[1]):
        changes = {owners[r] for r in range(1, len(rows)) if not _same(out[r, j], out[0, j])}
        if not changes:
            result.append(Column(program.add("constant", float(out[0, j])), "number", None, (float(out[0, j]),)))
            continue
        if len(changes) > 1:
            raise NotCompilable(f"{type(step).__name__}: an output depends on several columns")
        (k,) = changes
        result.append(_lookup_or_identity(program, columns[k], rows, owners, out[:, j], k))
    return result


def _lookup_or_identity(
    program: Program, column: Column, rows: list[list[Any]], owners: list[int], values: Any, k: int
) -> Column:
    probed = [(rows[r][k], float(values[r])) for r in range(len(rows)) if owners[r] in (k, -1)]
    if column.kind == "number" and all(_same(got, float(given)) for given, got in probed):
        return column  # passed through (a frame-wide encoder leaves numbers as they are)
    if column.kind == "number" and column.domain is None:
        raise NotCompilable("an encoder transforms a number column with many values (not a category)")
    # The last two probes of a column are always an unseen value and a missing one.
    *known, (_, other), (_, missing) = probed
    table = [[given, got] for given, got in known if not _same(got, other)]
    outputs = tuple(dict.fromkeys(v for v in (other, missing, *(got for _, got in table)) if not math.isnan(v)))
    return program.derived(column, "lookup", column.slot, table, other, missing, domain=outputs)


def _probe_values(step: Any, k: int, column: Column) -> list[Any]:
    if column.kind == "number" and column.domain is None:
        return [0.0, 1.5, -2.25, 1e6, math.nan]  # checked to pass through; missing stays NaN
    values = list(column.domain or ())
    categories = getattr(step, "categories_", None)
    if categories is not None and k < len(categories):
        values += [plain(v) for v in categories[k] if not _is_missing(v)]
    known = list(dict.fromkeys(v for v in values if not _is_missing(v)))
    if not known:
        raise NotCompilable(f"column {column.name!r} had no values in training")
    if all(isinstance(v, str) for v in known):
        unseen: Any = UNSEEN_TEXT
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in known):
        unseen = float(max(known)) + 1.0
    else:
        kinds = sorted({type(v).__name__ for v in known})
        raise NotCompilable(f"column {column.name!r} holds values of types {', '.join(kinds)} (text or numbers only)")
    return [*known, unseen, math.nan]


def _frame(step: Any, columns: list[Column], rows: list[list[Any]]) -> Any:
    """Probe rows as the step was fitted: a DataFrame with its column names, or an array."""
    import numpy as np
    import pandas as pd

    names = getattr(step, "feature_names_in_", None)
    if names is None:
        numeric = all(c.kind == "number" for c in columns)
        return np.asarray(rows, dtype=float if numeric else object)
    frame = pd.DataFrame(rows, columns=[str(n) for n in names])
    for column, name in zip(columns, frame.columns):
        frame[name] = frame[name].astype(float if column.kind == "number" else object)
    return frame


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _dense(matrix: Any) -> Any:
    if hasattr(matrix, "toarray"):
        return matrix.toarray()
    return matrix.to_numpy() if hasattr(matrix, "to_numpy") else matrix


def plain(value: Any) -> Any:
    """numpy scalars to Python scalars, for JSON."""
    return value.item() if hasattr(value, "item") else value


def _json(value: Any) -> Any:
    """Step arguments as JSON: numpy scalars and arrays made plain, NaN and infinities as text."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
