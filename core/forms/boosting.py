"""Boosted trees (GradientBoostingClassifier, HistGradientBoostingClassifier): sigmoid(b + Σ leaf).

fast.json's "model": {"baseline": b, "trees": [tree, ...]} (see core.forms.trees); leaf values
already carry the learning rate, as scikit-learn adds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.forms.steps import StepSource, literal, number
from core.forms.trees import TreeSource, slots_read


def needed(model: dict[str, Any], steps: StepSource, outputs: Sequence[int]) -> list[int]:
    return slots_read(model["trees"], steps, outputs)


def source(model: dict[str, Any], steps: StepSource, outputs: Sequence[int]) -> list[str]:
    trees = TreeSource(steps, outputs)
    lines = [f"z = {literal(number(model['baseline']))}"]
    for tree in model["trees"]:
        lines += trees.lines(tree, "z")
    lines.append("return sigmoid(z)")
    return lines
