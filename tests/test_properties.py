"""Properties (hypothesis) of the spec parser and the metric functions."""
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.errors import SpecError
from bench.metrics import attack_success_rate, proportion, wilson_interval
from bench.spec import _TOP_KEYS, deep_merge, resolve

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE = {"key": "p", "dataset": "mnist", "models": ["A"], "n": 5}
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@FAST
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=4))
def test_any_eps_in_unit_interval_is_accepted_as_given(eps):
    spec = resolve({**BASE, "attacks": [{"key": "fgsm", "eps": eps}]})
    assert spec.attacks[0]["eps"] == [float(e) for e in eps]


@FAST
@given(finite.filter(lambda e: not 0 <= e <= 1))
def test_any_eps_outside_unit_interval_is_rejected_naming_the_field(eps):
    with pytest.raises(SpecError, match=r"attacks\[0\].*eps"):
        resolve({**BASE, "attacks": [{"key": "fgsm", "eps": eps}]})


@FAST
@given(st.floats(0.01, 1), st.floats(0, 1))
def test_rand_fgsm_alpha_must_be_below_eps(eps, alpha):
    data = {**BASE, "attacks": [{"key": "rand-fgsm", "eps": [eps], "alpha": alpha}]}
    if alpha < eps:
        assert resolve(data).attacks[0]["alpha"] == alpha
    else:
        with pytest.raises(SpecError, match=r"attacks\[0\].*alpha"):
            resolve(data)


@FAST
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(lambda k: k not in _TOP_KEYS))
def test_unknown_top_level_keys_are_rejected_by_name(name):
    with pytest.raises(SpecError, match=f"spec: unknown key '{name}'"):
        resolve({**BASE, "attacks": [{"key": "none"}], name: 1})


@FAST
@given(st.integers(-5, 0) | st.booleans() | st.floats(0.5, 3.5))
def test_n_must_be_a_positive_integer(n):
    with pytest.raises(SpecError, match=r"\bn: expected an integer >= 1"):
        resolve({**BASE, "n": n, "attacks": [{"key": "none"}]})


tables = st.recursive(st.integers() | st.text(max_size=3) | st.lists(st.integers(), max_size=2),
                      lambda inner: st.dictionaries(st.sampled_from("abcd"), inner, max_size=3), max_leaves=8)


@FAST
@given(st.dictionaries(st.sampled_from("abcd"), tables, max_size=4),
       st.dictionaries(st.sampled_from("abcd"), tables, max_size=4))
def test_deep_merge_keeps_every_key_and_the_override_wins(base, over):
    merged = deep_merge(base, over)
    assert set(merged) == set(base) | set(over)
    for key, value in over.items():
        if not (isinstance(value, dict) and isinstance(base.get(key), dict)):
            assert merged[key] == value
    assert deep_merge(merged, over) == merged  # applying the same override twice changes nothing
    assert deep_merge(base, {}) == base


@given(st.lists(st.booleans(), max_size=200))
def test_proportion_counts_and_bounds(flags):
    mean, k, n = proportion(flags)
    assert (k, n) == (sum(flags), len(flags))
    assert math.isnan(mean) if not flags else 0 <= mean <= 1


@given(st.integers(1, 2000).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_wilson_interval_grows_with_the_count(case):
    k, n = case
    low, high = wilson_interval(k, n)
    low2, high2 = wilson_interval(k + 1, n)
    assert low <= low2 and high <= high2
    assert high - low <= 2 * 1.96 * math.sqrt(0.25 / n) + 1e-9 + 1.96 ** 2 / n


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)), max_size=100))
def test_attack_success_rate_counts_only_flips_of_correct_samples(rows):
    y, clean, adv = ([r[i] for r in rows] for i in range(3))
    rate, flips, correct = attack_success_rate(y, clean, adv)
    assert correct == sum(t == c for t, c in zip(y, clean))
    assert flips == sum(t == c and a != t for t, c, a in zip(y, clean, adv))
    assert (math.isnan(rate) if correct == 0 else rate == flips / correct)
    assert attack_success_rate(y, clean, clean)[1] == 0  # no change, no success
