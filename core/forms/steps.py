"""The preprocessing part of a fast form: a list of steps, each computing one value of the row.

Slots 0..n-1 hold the observation's values in schema order (a number, a string or None); step k
computes slot n+k from earlier slots. Numbers that are missing become NaN, as they do in
scikit-learn, and flow on as NaN. The steps are turned into straight-line Python by `source`.

    ["number", s]                 None -> NaN, else the number
    ["fill", s, c]                NaN -> c                 (SimpleImputer, numbers)
    ["fill_category", s, c]       None -> c                (SimpleImputer, categories)
    ["is_missing", s]             1.0 when None or NaN     (missing indicators)
    ["affine", s, sub, div]       (x - sub) / div          (StandardScaler, RobustScaler, MaxAbsScaler)
    ["scale", s, mul, add]        x * mul + add            (MinMaxScaler)
    ["log1p", s]                  log(1 + x), as numpy     (FunctionTransformer(np.log1p))
    ["product", a, b]             x_a * x_b                (PolynomialFeatures)
    ["bin", s, edges]             index of x among edges   (KBinsDiscretizer)
    ["lookup", s, pairs, other, missing]
                                  the value paired with x, `other` for anything else, `missing` for
                                  None/NaN (any encoder of categories, probed when built)
    ["constant", c]               c

Numbers in the JSON are plain, or "nan", "inf", "-inf" (JSON has no literal for them).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NAN = math.nan


@dataclass(frozen=True)
class Lookup:
    """A "lookup" step's function: its value for each listed category, any other, a missing one."""

    table: dict[Any, float]
    other: float
    missing: float

    @classmethod
    def of_step(cls, step: Sequence[Any]) -> Lookup:
        return cls({category_key(k): number(v) for k, v in step[2]}, number(step[3]), number(step[4]))

    def value(self, key: Any) -> float:
        """For a category key; None is a missing one."""
        return self.missing if key is None else self.table.get(key, self.other)

    def then(self, step: Sequence[Any]) -> Lookup:
        """This lookup followed by the one-number `step`."""
        return Lookup(
            {k: apply_unary(step, v) for k, v in self.table.items()},
            apply_unary(step, self.other),
            apply_unary(step, self.missing),
        )


@dataclass(frozen=True)
class CategoryView:
    """An output that is a lookup of a category: its source slot (a string, or None when
    missing) and the lookup."""

    source: int
    lookup: Lookup


def number(value: Any) -> float:
    """A JSON number, or one of the strings "nan", "inf", "-inf"."""
    if isinstance(value, str):
        if value not in ("nan", "inf", "-inf"):
            raise ValueError(f"not a number: {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def literal(value: float) -> str:
    """Python source for a float, exact (repr round-trips), NaN and infinities by name."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(float(value))


def log1p(x: float) -> float:
    """numpy's log1p: -inf at -1 and NaN below, where math.log1p raises."""
    if x > -1.0:
        return math.log1p(x)
    return -math.inf if x == -1.0 else NAN


# What step expressions may call besides their constants (core.forms adds the families' own).
RUNTIME: dict[str, Any] = {"NAN": NAN, "INF": math.inf, "log1p": log1p, "bisect_right": bisect_right}


def category_key(value: Any) -> Any:
    """A category as stored in a lookup: a string, a number or None, checked."""
    if value is None or isinstance(value, str):
        return value
    return number(value)


class StepSource:
    """Python source lines for the steps, and the constants they name."""

    def __init__(self, n_inputs: int, steps: Sequence[Sequence[Any]]) -> None:
        self.n_inputs = int(n_inputs)
        self.steps = [list(step) for step in steps]
        self.namespace: dict[str, Any] = {}  # constants the code names (NAN, log1p, ...: core.forms.RUNTIME)

    def slot(self, index: Any) -> str:
        index = int(index)
        if not 0 <= index < self.n_inputs + len(self.steps):
            raise ValueError(f"slot {index} does not exist")
        return f"s{index}"

    def category_views(self, outputs: Sequence[int]) -> dict[int, CategoryView]:
        """The outputs that are lookups of a category (a string slot), by output index."""
        numbers = {int(step[1]) for step in self.steps if step[0] == "number"}
        categories = {k for k in range(self.n_inputs) if k not in numbers}
        categories |= {self.n_inputs + k for k, step in enumerate(self.steps) if step[0] == "fill_category"}
        views = {}
        for j, slot in enumerate(outputs):
            slot = int(slot)
            step = self.steps[slot - self.n_inputs] if slot >= self.n_inputs else None
            if step is not None and step[0] == "lookup" and int(step[1]) in categories:
                views[j] = CategoryView(int(step[1]), Lookup.of_step(step))
        return views

    def needed(self, outputs: Sequence[int]) -> set[int]:
        """The slots that `outputs` depend on, so that unused steps generate no code."""
        needed: set[int] = set()
        pending = [int(o) for o in outputs]
        while pending:
            index = pending.pop()
            if index in needed:
                continue
            needed.add(index)
            if index >= self.n_inputs:
                step = self.steps[index - self.n_inputs]
                pending.extend(int(a) for a in _sources(step))
        return needed

    def lines(self, outputs: Sequence[int]) -> list[str]:
        needed = self.needed(outputs)
        code = ["(" + ", ".join(f"s{i}" for i in range(self.n_inputs)) + ",) = row"]
        for k, step in enumerate(self.steps):
            index = self.n_inputs + k
            if index in needed:
                code.append(f"s{index} = {self.expression(index, step)}")
        return code

    def expression(self, index: int, step: list[Any]) -> str:
        op, args = step[0], step[1:]
        if op == "constant":
            return literal(number(args[0]))
        x = self.slot(args[0])
        if op == "number":
            # float() once: CPython compares and multiplies float by float fastest (int by float is generic).
            return f"NAN if {x} is None else float({x})"
        if op == "fill":
            return f"{literal(number(args[1]))} if {x} != {x} else {x}"
        if op == "fill_category":
            return f"{repr(category_key(args[1]))} if {x} is None else {x}"
        if op == "is_missing":
            return f"1.0 if {x} is None or {x} != {x} else 0.0"
        if op == "affine":
            return f"({x} - {literal(number(args[1]))}) / {literal(number(args[2]))}"
        if op == "scale":
            return f"{x} * {literal(number(args[1]))} + {literal(number(args[2]))}"
        if op == "log1p":
            return f"log1p({x})"
        if op == "product":
            return f"{x} * {self.slot(args[1])}"
        if op == "bin":
            name = f"E{index}"
            self.namespace[name] = [number(e) for e in args[1]]
            return f"float(bisect_right({name}, {x}))"
        if op == "lookup":
            name = f"T{index}"
            lookup = Lookup.of_step(step)
            other, missing = lookup.other, lookup.missing
            self.namespace[name] = lookup.table
            found = f"{name}.get({x}, {literal(other)})"
            if missing == other or (math.isnan(missing) and math.isnan(other)):
                return found
            return f"{literal(missing)} if {x} is None or {x} != {x} else {found}"
        raise ValueError(f"unknown step {op!r}")


UNARY_OPS = ("fill", "is_missing", "affine", "scale", "log1p", "bin")


def apply_unary(step: Sequence[Any], x: float) -> float:
    """What one-number `step` computes for the number x: its own generated expression, evaluated
    (so that folding a step at load time can never differ from running it)."""
    if step[0] not in UNARY_OPS:
        raise ValueError(f"{step[0]!r} is not a one-number step")
    source = StepSource(1, [[step[0], 0, *step[2:]]])
    expression = source.expression(1, source.steps[0])
    return float(eval(expression, {**RUNTIME, **source.namespace, "s0": x}))  # noqa: S307 - our own expression


def _sources(step: Sequence[Any]) -> list[Any]:
    op = step[0]
    if op == "constant":
        return []
    if op == "product":
        return [step[1], step[2]]
    return [step[1]]
