"""Metric functions against hand-computed cases, plus properties (hypothesis)."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.metrics import attack_success_rate, proportion, wilson_interval


def test_wilson_known_values():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="expected 0 <= successes <= n"):
        wilson_interval(3, 2)


@given(st.integers(0, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_estimate(case):
    k, n = case
    low, high = wilson_interval(k, n)
    if n:
        assert 0 <= low <= k / n <= high <= 1


def test_attack_success_rate_ignores_initially_wrong_samples():
    y = [0, 1, 2, 3]
    clean = [0, 1, 2, 0]  # the last one is already wrong
    adv = [0, 2, 1, 0]
    assert attack_success_rate(y, clean, adv) == (pytest.approx(2 / 3), 2, 3)
    assert proportion([]) [1:] == (0, 0)
