"""The harness enforces the threat model after every attack."""
import pytest
import torch

from bench.errors import ThreatModelError
from bench.invariants import enforce, norms


def test_roundoff_is_projected_and_norms_measured():
    x = torch.full((2, 1, 2, 2), 0.5)
    x_adv = x + 0.3 + 5e-6
    out = enforce(x, x_adv, norm="linf", eps=0.3, who="t")
    linf, l2 = norms(x, out)
    assert torch.all(linf <= 0.3 + 1e-7) and torch.allclose(l2, torch.full((2,), 0.6), atol=1e-4)


@pytest.mark.parametrize("shift, norm, eps, message", [
    (0.31, "linf", 0.3, "linf norm 0.31"),
    (0.6, "linf", None, r"outside \[0, 1\]"),
    (0.2, "l2", 0.3, "l2 norm 0.4"),
])
def test_points_outside_the_threat_model_are_errors(shift, norm, eps, message):
    x = torch.full((1, 1, 2, 2), 0.5)
    with pytest.raises(ThreatModelError, match=message):
        enforce(x, x + shift, norm=norm, eps=eps, who="backend")


def test_non_finite_is_an_error():
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ThreatModelError, match="non-finite"):
        enforce(x, x * float("nan"), norm="linf", eps=0.1, who="b")
