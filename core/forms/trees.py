"""Decision trees as nested `if` statements: the shared part of the forest and boosting forms.

A tree in fast.json is flat node arrays, as scikit-learn keeps them: node i splits on feature
`feature[i]` (an index into the form's outputs) at `threshold[i]` and goes to `left[i]` or
`right[i]`; a leaf has left = -1 and its `value`. `missing_left[i]` says where NaN goes. A
categorical split (HistGradientBoosting's native categories) lists in `categories[i]` the
values that go left; values outside the feature's `known` categories go where NaN goes.

Thresholds are compared in float64 on the row's values. Trees that scikit-learn evaluates in
float32 had their thresholds moved when compiled so that this comparison gives float32's answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.forms.steps import CategoryView, StepSource, literal, number

# Python's tokenizer accepts at most 100 levels of indentation; the function body takes two.
MAX_DEPTH = 90


class TreeSource:
    """Source lines that add each leaf's value to `target`."""

    def __init__(self, steps: StepSource, outputs: Sequence[int]) -> None:
        self.features = [f"s{o}" for o in outputs]
        # Splits on an encoded category test the category itself.
        self.views = steps.category_views(outputs)

    def _membership(self, x: str, values: Any, negated: bool = False) -> str:
        """`x in values` as constants: CPython folds a literal set after `in` into one frozenset."""
        items = sorted(_constant(v) for v in set(values))
        if len(items) == 1:
            return f"{x} {'!=' if negated else '=='} {items[0]}"
        if not items:
            return "True" if negated else "False"
        return f"{x} {'not in' if negated else 'in'} {{{', '.join(items)}}}"

    def lines(self, tree: dict[str, Any], target: str, indent: int = 0) -> list[str]:
        feature, threshold = tree["feature"], tree["threshold"]
        left, right, value = tree["left"], tree["right"], tree["value"]
        missing_left = tree.get("missing_left") or [0] * len(left)
        categories = {int(k): v for k, v in (tree.get("categories") or {}).items()}
        known = {int(k): v for k, v in (tree.get("known") or {}).items()}
        out: list[str] = []
        # An explicit stack, not recursion: a tree's depth must not meet Python's recursion limit.
        stack: list[tuple[int, int, str | None]] = [(0, indent, None)]
        while stack:
            node, depth, header = stack.pop()
            if depth - indent > MAX_DEPTH:
                raise ValueError(f"a tree is deeper than {MAX_DEPTH} levels")
            pad = " " * depth
            if header is not None:
                out.append(header)
            if int(left[node]) < 0:
                out.append(f"{pad}{target} += {literal(number(value[node]))}")
                continue
            f = int(feature[node])
            goes_left = bool(missing_left[node])
            split = _Split(number(threshold[node]), goes_left, categories.get(node), known.get(f))
            view = self.views.get(f)
            if view is not None:
                condition = self._category_condition(view, split)
            elif split.left_set is not None:
                condition = self._membership(self.features[f], split.left_set)
                if goes_left:
                    condition += " or " + self._membership(self.features[f], split.known or (), negated=True)
            elif goes_left:
                condition = f"not {self.features[f]} > {literal(split.threshold)}"
            else:
                condition = f"{self.features[f]} <= {literal(split.threshold)}"
            out.append(f"{pad}if {condition}:")
            # Pushed right first so that the left branch is written first, under its `if`.
            stack.append((int(right[node]), depth + 1, f"{pad}else:"))
            stack.append((int(left[node]), depth + 1, None))
        return out

    def _category_condition(self, view: CategoryView, split: _Split) -> str:
        """The split decided on the category: the categories that go left (or those that go right)."""
        source, lookup = f"s{view.source}", view.lookup
        left = {key for key, value in lookup.table.items() if split.goes_left(value)}
        right = set(lookup.table) - left
        other_left, missing_left = split.goes_left(lookup.other), split.goes_left(lookup.missing)
        # A missing category is None, which no table holds: it falls with "other" unless told apart.
        if other_left:
            return self._membership(source, right | ({None} if not missing_left else set()), negated=True)
        return self._membership(source, left | ({None} if missing_left else set()))


def _constant(value: Any) -> str:
    """Source for a category or a code: repr is a literal for strings, None and finite floats."""
    if value is None or isinstance(value, str):
        return repr(value)
    return literal(number(value))


@dataclass(frozen=True)
class _Split:
    """One split, decided for a value as scikit-learn decides it."""

    threshold: float
    missing_left: bool
    left_set: Any = None  # categorical split: the values that go left
    known: Any = None  # and the feature's known values

    def __post_init__(self) -> None:
        if self.left_set is not None:
            object.__setattr__(self, "left_set", frozenset(number(c) for c in self.left_set))
            object.__setattr__(self, "known", frozenset(number(c) for c in self.known or ()))

    def goes_left(self, value: float) -> bool:
        if math.isnan(value):
            return self.missing_left
        if self.left_set is not None:
            return value in self.left_set or (value not in self.known and self.missing_left)
        return value <= self.threshold


def slots_read(trees: Sequence[dict[str, Any]], steps: StepSource, outputs: Sequence[int]) -> list[int]:
    """The slots the trees' code reads: each output split on, or the category behind it."""
    views = steps.category_views(outputs)
    split_on = {int(f) for tree in trees for f, left in zip(tree["feature"], tree["left"]) if int(left) >= 0}
    return sorted(views[f].source if f in views else int(outputs[f]) for f in split_on)
