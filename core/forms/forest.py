"""Averaged trees (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier).

fast.json's "model": {"trees": [tree, ...]} (see core.forms.trees); each leaf's value is the
positive class's share of the training samples there, and the probability is their mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.forms.steps import StepSource
from core.forms.trees import TreeSource, slots_read


def needed(model: dict[str, Any], steps: StepSource, outputs: Sequence[int]) -> list[int]:
    return slots_read(model["trees"], steps, outputs)


def source(model: dict[str, Any], steps: StepSource, outputs: Sequence[int]) -> list[str]:
    trees = TreeSource(steps, outputs)
    lines = ["p = 0.0"]
    for tree in model["trees"]:
        lines += trees.lines(tree, "p")
    # As scikit-learn: the sum over the trees, then one division.
    lines.append(f"return p / {float(len(model['trees']))!r}")
    return lines
