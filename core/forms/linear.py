"""Logistic models (LogisticRegression, SGDClassifier(loss="log_loss")): sigmoid(b + Σ w_j x_j).

fast.json's "model": {"intercept": b, "weights": [w_j for each output]}.

Written term by term, a one-hot encoded pipeline with pairwise interactions costs hundreds of
multiply-adds, most of them by zero. The code regroups the sum instead: each output is a
product of numbers (scaled, imputed, ...) and lookups of categories (one-hot columns, ordinal
codes, bins), so the sum is Σ over products of numbers m of coefficient_m(categories) · m. The
coefficients depend on the row's categories only: they are computed for each combination the
first time it is seen and kept (at most CACHE_LIMIT combinations; past that, computed per row),
and a row costs one dictionary lookup and a multiply-add per product of numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.forms.steps import UNARY_OPS, Lookup, StepSource, literal, number

CACHE_LIMIT = 4096


class _Other:
    """The key of every category a lookup does not list."""

    def __repr__(self) -> str:
        return "OTHER"


OTHER = _Other()


class _Terms:
    """The weighted outputs as (weight, numbers multiplied, lookups multiplied) products."""

    def __init__(self, model: dict[str, Any], steps: StepSource, outputs: Sequence[int]) -> None:
        self.steps = steps
        self.intercept = number(model["intercept"])
        # by product of numbers (sorted slot indexes): [(weight, [(source slot, lookup)])]
        self.monomials: dict[tuple[int, ...], list[tuple[float, list[tuple[int, Lookup]]]]] = {(): []}
        for weight, output in zip(model["weights"], outputs):
            w = number(weight)
            if w == 0.0:
                continue
            numbers, lookups = self._factors(int(output))
            self.monomials.setdefault(tuple(sorted(numbers)), []).append((w, lookups))
        lookups_used = [lookup for terms in self.monomials.values() for _, lookups in terms for lookup in lookups]
        self.sources = sorted({source for source, _ in lookups_used if source >= 0})

    def _factors(self, slot: int) -> tuple[list[int], list[tuple[int, Lookup]]]:
        step = self.steps.steps[slot - self.steps.n_inputs] if slot >= self.steps.n_inputs else None
        if step is not None and step[0] == "product":
            a_numbers, a_lookups = self._factors(int(step[1]))
            b_numbers, b_lookups = self._factors(int(step[2]))
            return a_numbers + b_numbers, a_lookups + b_lookups
        lookup = self._as_lookup(slot)
        if lookup is not None:
            return [], [lookup]
        return [slot], []

    def _as_lookup(self, slot: int) -> tuple[int, Lookup] | None:
        """(source, lookup) when the slot is a function of one category only: a lookup, a
        constant (source -1), or one-number steps over a lookup (an imputer or a scaler after a
        one-hot encoder), folded into the lookup's values."""
        if slot < self.steps.n_inputs:
            return None
        step = self.steps.steps[slot - self.steps.n_inputs]
        if step[0] == "constant":
            return -1, Lookup({}, number(step[1]), number(step[1]))
        if step[0] == "lookup":
            return int(step[1]), Lookup.of_step(step)
        if step[0] in UNARY_OPS:
            inner = self._as_lookup(int(step[1]))
            if inner is not None and inner[0] >= 0:
                return inner[0], inner[1].then(step)
        return None

    def known(self, source: int) -> frozenset[Any]:
        return frozenset(
            k for terms in self.monomials.values() for _, lookups in terms for s, lookup in lookups
            if s == source for k in lookup.table
        )

    def coefficients(self, key: tuple[Any, ...]) -> tuple[float, ...]:
        """Each product of numbers' coefficient, given each source's category (canonical key)."""
        values = dict(zip(self.sources, key))
        result = []
        for monomial, terms in self.monomials.items():
            total = self.intercept if monomial == () else 0.0
            for weight, lookups in terms:
                for source, lookup in lookups:
                    weight *= lookup.value(values.get(source))
                total += weight
            result.append(total)
        return tuple(result)


def needed(model: dict[str, Any], steps: StepSource, outputs: Sequence[int]) -> list[int]:
    terms = _Terms(model, steps, outputs)
    return sorted({slot for monomial in terms.monomials for slot in monomial} | set(terms.sources))


def source(model: dict[str, Any], steps: StepSource, outputs: Sequence[int]) -> list[str]:
    terms = _Terms(model, steps, outputs)
    products = [" * ".join(f"s{slot}" for slot in monomial) for monomial in terms.monomials]
    if not terms.sources:
        coefficients = terms.coefficients(())
        lines = [f"z = {literal(coefficients[0])}"]
        lines += [f"z += {literal(c)} * {p}" for c, p in zip(coefficients[1:], products[1:]) if c != 0.0]
        return [*lines, "return sigmoid(z)"]
    keys = []
    for n, slot in enumerate(terms.sources):
        steps.namespace[f"KNOWN{n}"] = terms.known(slot)
        x = f"s{slot}"
        keys.append(f"None if {x} is None or {x} != {x} else ({x} if {x} in KNOWN{n} else OTHER)")
    cache: dict[tuple[Any, ...], tuple[float, ...]] = {}

    def combination(key: tuple[Any, ...]) -> tuple[float, ...]:
        found = terms.coefficients(key)
        if len(cache) < CACHE_LIMIT:
            cache[key] = found
        return found

    steps.namespace.update(OTHER=OTHER, COEFFICIENTS=cache, combination=combination)
    lines = [f"k{n} = {key}" for n, key in enumerate(keys)]
    key = "(" + "".join(f"k{n}, " for n in range(len(keys))) + ")"
    lines += [f"c = COEFFICIENTS.get({key})", "if c is None:", f" c = combination({key})", "z = c[0]"]
    # One statement per product: one expression of hundreds of terms nests too deep to compile.
    lines += [f"z += c[{k}] * {p}" for k, p in enumerate(products) if k > 0]
    return [*lines, "return sigmoid(z)"]
