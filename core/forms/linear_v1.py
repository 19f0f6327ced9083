"""The first fast-form format, "linear-v1", still read so that artifacts built with it serve as before.

New artifacts get "fast-v2" (core.forms); nothing writes this format any more. It held a column
transformer's encoders per feature, optional degree-2 interactions and a logistic regression.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

FORMAT = "linear-v1"



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
