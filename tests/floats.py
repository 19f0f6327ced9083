"""Float comparisons for results that are reproduced rather than read back.

The same training on another CPU (Intel against AMD, another SIMD path in OpenBLAS) differs in
the last bits: a Brier score was seen to move in its 16th digit. A real change of data, code or
hyperparameters moves a metric or a probability by far more than a millionth of a millionth.
"""

from __future__ import annotations

import math
from typing import Any

# Relative tolerance of reproduced floats: above the last-bit noise (~1e-15), far below any real change.
REPRODUCED_REL = 1e-9
# Absolute floor, for figures that should be 0.0 and come back as 1e-17.
REPRODUCED_ABS = 1e-12


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REPRODUCED_REL, abs_tol=REPRODUCED_ABS)


def differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where two JSON-like values differ: floats within the tolerance above, anything else exactly."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        if actual.keys() != expected.keys():
            return [f"{path or '.'}: keys {sorted(actual)} != {sorted(expected)}"]
        return [d for k in actual for d in differences(actual[k], expected[k], f"{path}.{k}")]
    if isinstance(actual, (list, tuple)) and isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            return [f"{path or '.'}: length {len(actual)} != {len(expected)}"]
        return [d for i, (a, e) in enumerate(zip(actual, expected)) for d in differences(a, e, f"{path}[{i}]")]
    numbers = (int, float)
    if isinstance(actual, float) and isinstance(expected, numbers) and not isinstance(expected, bool):
        return [] if close(actual, float(expected)) else [f"{path or '.'}: {actual!r} != {expected!r}"]
    same = actual == expected and type(actual) is type(expected)
    return [] if same else [f"{path or '.'}: {actual!r} != {expected!r}"]


def assert_reproduced(actual: Any, expected: Any) -> None:
    """`actual == expected`, but floats only to REPRODUCED_REL (see the module docstring)."""
    found = differences(actual, expected)
    assert not found, "reproduced values differ:\n" + "\n".join(found[:20])
