"""Fixtures shared by the HTTP and Lambda tests."""

from __future__ import annotations

from typing import Any

import pytest

# The body of the README's curl example (the original app's), byte for byte.
README_PREDICT_BODY = (
    b'{"id": 0, "observation": {"Age": 22.0, "Cabin": null, "Embarked": "S", "Fare": 7.25, '
    b'"Parch": 0, "Pclass": 3, "Sex": "male", "SibSp": 1}}'
)


@pytest.fixture
def passenger() -> dict[str, Any]:
    """A valid observation for the shipped Titanic model (a fresh copy per test)."""
    return {"Age": 22.0, "Cabin": None, "Embarked": "S", "Fare": 7.25, "Parch": 0, "Pclass": 3, "Sex": "male",
            "SibSp": 1}
