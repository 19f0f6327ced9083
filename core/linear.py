"""A pure-Python evaluator for the linear pipelines we ship, compiled from the fitted pipeline.

scikit-learn spends milliseconds of per-call overhead on a single row; the model itself is a
few dozen multiply-adds. `compile_pipeline` reads the fitted steps (column transformer with
imputers, log1p, scalers and one-hot encoders; optional degree-2 polynomial features; logistic
regression) into plain numbers, and `LinearForm` evaluates one row with `math` only. Anything
else raises `NotCompilable` and the model is served by scikit-learn itself. The artifact builder
checks that both agree before it ships the fast form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

FORMAT = "linear-v1"


class NotCompilable(Exception):
    """The pipeline has a step this evaluator does not reproduce exactly."""


class LinearForm:
    """Evaluates `sigmoid(b + w·x + Σ P_ij x_i x_j)` where x is the encoded row, from plain JSON data.

    Categories only switch one-hot entries on, so everything that depends on them alone (their
    constant part, and the weight each numeric channel gets from its interactions with them) is
    computed once per combination of categories and cached; a row then costs a handful of
    multiply-adds over its numeric channels. The cache is bounded; past the bound rows are
    still scored, just without caching.
    """

    CACHE_LIMIT = 4096

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown fast-form format {data.get('format')!r}")
        self.data = data
        self._intercept = float(data["intercept"])
        self._weights = [float(w) for w in data["weights"]]
        n = len(self._weights)
        pairs = [[0.0] * n for _ in range(n)]
        for i, j, w in data["pairs"]:
            pairs[i][j] = pairs[j][i] = float(w)
        self._pairs = pairs
        self._numbers: list[tuple[int, float, tuple[tuple[float, float, float], ...], Any]] = []
        self._number_channels: list[int] = []
        self._categories: list[tuple[int, Any, dict[Any, list[tuple[int, float]]], list[tuple[int, float]]]] = []
        for position, spec in enumerate(data["encoders"]):
            if spec["kind"] == "number":
                (channel,) = spec["channels"]
                indicator = spec.get("indicator")
                self._numbers.append(
                    (
                        position,
                        float(spec["fill"]),
                        _compile_ops(channel["ops"]),
                        (indicator["missing"], indicator["present"]) if indicator else None,
                    )
                )
                self._number_channels.append(channel["index"])
                if indicator:
                    self._number_channels.append(indicator["index"])
            else:
                mapping = {_category_key(k): [(int(i), float(v)) for i, v in entries] for k, entries in spec["mapping"]}
                unknown = [(int(i), float(v)) for i, v in spec["unknown"]]
                self._categories.append((position, spec.get("fill"), mapping, unknown))
        channels = self._number_channels
        self._number_pairs = [
            (a, b, pairs[channels[a]][channels[b]])
            for a in range(len(channels))
            for b in range(a + 1, len(channels))
            if pairs[channels[a]][channels[b]] != 0.0
        ]
        self._cache: dict[tuple[Any, ...], tuple[float, list[float]]] = {}

    def _category_part(self, key: tuple[Any, ...]) -> tuple[float, list[float]]:
        """The constant term and the numeric channels' weights, given the row's categories."""
        entries: list[tuple[int, float]] = []
        for (_, fill, mapping, unknown), value in zip(self._categories, key):
            if value is None and fill is not None:
                value = fill
            entries.extend(mapping.get(_category_key(value), unknown))
        weights, pairs = self._weights, self._pairs
        constant = self._intercept
        for a, (i, xi) in enumerate(entries):
            constant += weights[i] * xi
            for j, xj in entries[a + 1 :]:
                constant += pairs[i][j] * xi * xj
        slopes = []
        for channel in self._number_channels:
            slope = weights[channel]
            for j, xj in entries:
                slope += pairs[channel][j] * xj
            slopes.append(slope)
        part = (constant, slopes)
        if len(self._cache) < self.CACHE_LIMIT:
            self._cache[key] = part
        return part

    def decision(self, values: Sequence[Any]) -> float:
        xs: list[float] = []
        for position, fill, ops, indicator in self._numbers:
            value = values[position]
            x = fill if value is None else float(value)
            for log, mean, scale in ops:
                if log:
                    x = math.log1p(x)
                x = (x - mean) / scale
            xs.append(x)
            if indicator is not None:
                xs.append(indicator[0] if value is None else indicator[1])
        key = tuple([_category_key(values[c[0]]) for c in self._categories])
        part = self._cache.get(key)
        z, slopes = part if part is not None else self._category_part(key)
        for slope, x in zip(slopes, xs):
            z += slope * x
        for a, b, w in self._number_pairs:
            z += w * xs[a] * xs[b]
        return z

    def proba(self, values: Sequence[Any]) -> float:
        z = self.decision(values)
        # Written so that neither branch can overflow, like scipy's expit.
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


def _compile_ops(ops: list[list[Any]]) -> tuple[tuple[float, float, float], ...]:
    """Numeric steps as (log1p first?, mean, scale) triples; a lone log1p scales by (0, 1)."""
    compiled: list[tuple[float, float, float]] = []
    pending_log = False
    for op in ops:
        if op[0] == "log1p":
            if pending_log:
                compiled.append((True, 0.0, 1.0))
            pending_log = True
        else:
            compiled.append((pending_log, float(op[1]), float(op[2])))
            pending_log = False
    if pending_log:
        compiled.append((True, 0.0, 1.0))
    return tuple(compiled)


def _category_key(value: Any) -> Any:
    # JSON gives 3 or 3.0 for an integer category; both must find the same entry.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- compiling a fitted scikit-learn pipeline (build time only; imports scikit-learn lazily) ---


def compile_pipeline(pipeline: Any, feature_names: list[str]) -> dict[str, Any]:
    """Turn a fitted pipeline into LinearForm data, or raise NotCompilable."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PolynomialFeatures

    if not isinstance(pipeline, Pipeline):
        raise NotCompilable("not a Pipeline")
    steps = [step for _, step in pipeline.steps if step not in (None, "passthrough")]
    if not steps or not isinstance(steps[0], ColumnTransformer):
        raise NotCompilable("the first step is not a ColumnTransformer")
    if not isinstance(steps[-1], LogisticRegression) or len(steps[-1].classes_) != 2:
        raise NotCompilable("the last step is not a binary LogisticRegression")
    if len(steps) == 3 and not isinstance(steps[1], PolynomialFeatures):
        raise NotCompilable(f"unsupported middle step {type(steps[1]).__name__}")
    if len(steps) > 3:
        raise NotCompilable("too many steps")
    encoders, n_encoded = _compile_column_transformer(steps[0], feature_names)
    model = steps[-1]
    coef = model.coef_[0]
    weights = [0.0] * n_encoded
    pairs: dict[tuple[int, int], float] = {}
    if len(steps) == 3:
        powers = steps[1].powers_
        if powers.shape[1] != n_encoded or powers.max(initial=0) > 2 or powers.sum(axis=1).max() > 2:
            raise NotCompilable("polynomial features beyond degree 2")
        for k, row in enumerate(powers):
            nz = np.flatnonzero(row)
            if row.sum() == 0:
                raise NotCompilable("polynomial bias column")
            if row.sum() == 1:
                weights[int(nz[0])] += float(coef[k])
            elif len(nz) == 2:
                key = (int(nz[0]), int(nz[1]))
                pairs[key] = pairs.get(key, 0.0) + float(coef[k])
            else:
                raise NotCompilable("squared terms are not supported")
    else:
        if len(coef) != n_encoded:
            raise NotCompilable("coefficient count does not match the encoded width")
        weights = [float(c) for c in coef]
    return {
        "format": FORMAT,
        "intercept": float(model.intercept_[0]),
        "weights": weights,
        "pairs": [[i, j, w] for (i, j), w in sorted(pairs.items())],
        "encoders": [encoders[name] for name in feature_names],
    }


def _compile_column_transformer(ct: Any, feature_names: list[str]) -> tuple[dict[str, dict[str, Any]], int]:
    from sklearn.pipeline import Pipeline

    encoders: dict[str, dict[str, Any]] = {}
    offset = 0
    for name, transformer, columns in ct.transformers_:
        if transformer == "drop" or (name == "remainder" and len(columns) == 0):
            continue
        if transformer == "passthrough":
            raise NotCompilable("passthrough columns are not supported")
        cols = [feature_names[c] if isinstance(c, (int,)) else c for c in columns]
        steps = [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
        block, width = _compile_block(steps, cols)
        for col, spec in block.items():
            _shift(spec, offset)
            if col in encoders:
                raise NotCompilable(f"column {col!r} is used by two transformers")
            encoders[col] = spec
        offset += width
    missing = [n for n in feature_names if n not in encoders]
    if missing:
        raise NotCompilable(f"features not used by the model: {missing}")
    return encoders, offset


def _shift(spec: dict[str, Any], offset: int) -> None:
    if spec["kind"] == "number":
        for c in spec["channels"]:
            c["index"] += offset
        if spec.get("indicator"):
            spec["indicator"]["index"] += offset
    else:
        spec["mapping"] = [[k, [[i + offset, v] for i, v in entries]] for k, entries in spec["mapping"]]
        spec["unknown"] = [[i + offset, v] for i, v in spec["unknown"]]


def _compile_block(steps: list[Any], cols: list[str]) -> tuple[dict[str, dict[str, Any]], int]:
    """One column-transformer block: numeric chains, or an imputer then a one-hot encoder."""
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    if isinstance(steps[-1], OneHotEncoder):
        fills: list[Any] = [None] * len(cols)
        for step in steps[:-1]:
            if not isinstance(step, SimpleImputer) or step.strategy not in ("constant", "most_frequent"):
                raise NotCompilable(f"unsupported step before OneHotEncoder: {type(step).__name__}")
            if step.add_indicator:
                raise NotCompilable("missing indicators before one-hot encoding")
            fills = [_plain(v) for v in step.statistics_]
        return _compile_one_hot(steps[-1], cols, fills)

    # Numeric chain: channels are the columns, then the imputer's missing indicators.
    spec: dict[str, dict[str, Any]] = {
        c: {"kind": "number", "fill": None, "channels": [{"index": k, "ops": []}], "indicator": None}
        for k, c in enumerate(cols)
    }
    indicators: list[tuple[str, list[float]]] = []  # (column, [value if missing, value if present])
    width = len(cols)
    for step in steps:
        if isinstance(step, SimpleImputer):
            if step.strategy not in ("mean", "median", "constant", "most_frequent") or any(
                s["fill"] is not None for s in spec.values()
            ):
                raise NotCompilable("unsupported imputer")
            for c, stat in zip(cols, step.statistics_):
                spec[c]["fill"] = float(stat)
            if step.add_indicator:
                for k in step.indicator_.features_:
                    indicators.append((cols[int(k)], [1.0, 0.0]))
                width += len(step.indicator_.features_)
        elif isinstance(step, FunctionTransformer):
            if step.func is not np.log1p or step.kw_args:
                raise NotCompilable("only FunctionTransformer(np.log1p) is supported")
            for s in spec.values():
                s["channels"][0]["ops"].append(["log1p"])
            indicators = [(c, [math.log1p(v) for v in vals]) for c, vals in indicators]
        elif isinstance(step, StandardScaler):
            mean = step.mean_ if step.with_mean else np.zeros(width)
            scale = step.scale_ if step.with_std else np.ones(width)
            for k, c in enumerate(cols):
                spec[c]["channels"][0]["ops"].append(["scale", float(mean[k]), float(scale[k])])
            indicators = [
                (c, [(v - float(mean[len(cols) + m])) / float(scale[len(cols) + m]) for v in vals])
                for m, (c, vals) in enumerate(indicators)
            ]
        else:
            raise NotCompilable(f"unsupported numeric step {type(step).__name__}")
    if any(s["fill"] is None for s in spec.values()):
        # Without an imputer, scikit-learn would propagate NaN; refuse rather than guess.
        raise NotCompilable("numeric columns without an imputer")
    for m, (c, (if_missing, if_present)) in enumerate(indicators):
        spec[c]["indicator"] = {"index": len(cols) + m, "missing": if_missing, "present": if_present}
    return spec, width


def _compile_one_hot(enc: Any, cols: list[str], fills: list[Any]) -> tuple[dict[str, dict[str, Any]], int]:
    """Probe the fitted encoder with every known category and one unseen value, column by column."""
    import numpy as np

    if enc.drop is not None:
        raise NotCompilable("OneHotEncoder(drop=...) is not supported")
    if enc.handle_unknown == "error":
        raise NotCompilable("OneHotEncoder(handle_unknown='error') cannot score unseen categories")
    infrequent = getattr(enc, "infrequent_categories_", [None] * len(cols))
    # Output columns come per input column, in order; infrequent categories share one column.
    sizes = [len(cats) - (len(rare) - 1 if rare is not None else 0) for cats, rare in zip(enc.categories_, infrequent)]
    starts = np.cumsum([0, *sizes])
    base = [_plain(cats[0]) for cats in enc.categories_]
    spec: dict[str, dict[str, Any]] = {}
    for k, col in enumerate(cols):
        cats = [_plain(c) for c in enc.categories_[k]]
        unseen: Any = "\x00unseen" if all(isinstance(c, str) for c in cats) else max(cats) + 1
        rows = [base[:k] + [value] + base[k + 1 :] for value in [*cats, unseen]]
        out = np.asarray(_dense(enc.transform(_frame(enc, rows))))[:, starts[k] : starts[k + 1]]

        def entries(vec: Any, offset: int = int(starts[k])) -> list[list[Any]]:
            return [[offset + int(i), float(vec[i])] for i in np.flatnonzero(vec)]

        spec[col] = {
            "kind": "category",
            "fill": fills[k],
            "mapping": [[cat, entries(out[n])] for n, cat in enumerate(cats)],
            "unknown": entries(out[-1]),
        }
    return spec, int(starts[-1])


def _frame(enc: Any, rows: list[list[Any]]) -> Any:
    import numpy as np
    import pandas as pd

    names = getattr(enc, "feature_names_in_", None)
    if names is None:
        return np.asarray(rows, dtype=object)
    return pd.DataFrame(rows, columns=list(names)).astype(object)


def _dense(matrix: Any) -> Any:
    return matrix.toarray() if hasattr(matrix, "toarray") else matrix


def _plain(value: Any) -> Any:
    """numpy scalars to Python scalars, for JSON."""
    return value.item() if hasattr(value, "item") else value
