"""Metric functions shared by the tracks: accuracy with Wilson intervals, attack success, norms."""
from __future__ import annotations

import math
from typing import Sequence


def wilson_interval(successes: int, n: int, *, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % (by default) Wilson score interval for a binomial proportion ``successes / n``.

    Returns ``(nan, nan)`` for ``n == 0``. Unlike the normal approximation it stays inside [0, 1] and is
    sensible at proportions near 0 or 1, which is where robust accuracies live.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"expected 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, no round-off
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def proportion(flags: Sequence[bool]) -> tuple[float, int, int]:
    """``(mean, successes, n)`` of a sequence of booleans; mean is nan when empty."""
    n = len(flags)
    k = int(sum(bool(f) for f in flags))
    return (k / n if n else math.nan), k, n


def attack_success_rate(y: Sequence[int], clean_pred: Sequence[int], adv_pred: Sequence[int]) -> tuple[float, int, int]:
    """Fraction of the initially correct samples whose prediction the attack changed to a wrong one.

    Samples that were already misclassified are excluded (the attack had nothing to do), which is the
    usual definition (foolbox, RobustBench). Returns ``(rate, successes, n_initially_correct)``.
    """
    correct = [i for i, (t, p) in enumerate(zip(y, clean_pred)) if t == p]
    flips = [adv_pred[i] != y[i] for i in correct]
    return proportion(flips)
