"""The tolerance reproduced results are compared with: wide enough for CPUs, narrow enough for changes."""

from __future__ import annotations

import pytest

from tests.floats import assert_reproduced, differences


def test_last_bit_noise_between_cpus_is_accepted() -> None:
    # The Brier score seen on an Intel machine and on an AMD one.
    assert_reproduced({"brier_score": 0.13488849911666367}, {"brier_score": 0.13488849911666426})


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        ({"roc_auc": 0.8601}, {"roc_auc": 0.8602}),  # a real change in the fourth digit
        ({"brier": 0.134888}, {"brier": 0.134889}),
        ([1.0, 2.0], [1.0, 2.0, 3.0]),
        ({"a": 1}, {"b": 1}),
        ({"method": "5-fold"}, {"method": "10-fold"}),
        ({"n": 1}, {"n": True}),
    ],
)
def test_a_real_difference_is_reported(actual: object, expected: object) -> None:
    assert differences(actual, expected)
    with pytest.raises(AssertionError):
        assert_reproduced(actual, expected)


def test_nested_structures_name_the_differing_path() -> None:
    assert differences({"features": [{"stats": {"share": 0.5}}]}, {"features": [{"stats": {"share": 0.6}}]}) == [
        ".features[0].stats.share: 0.5 != 0.6"
    ]
