"""RAND+FGSM against a hand-computed reference (Tramèr et al. 2018; Defense-GAN's whitebox.py)."""
from __future__ import annotations

import pytest
import torch

from attacks import fgsm, rand_fgsm
from tests.test_attacks import images, linear_model, tiny_conv

EPS, ALPHA = 0.3, 0.05


def binary_linear() -> tuple[torch.nn.Module, torch.Tensor]:
    """Logits (0, d·x) with |d_i| in [0.05, 0.15]; returns the model and d (64,)."""
    g = torch.Generator().manual_seed(7)
    d = (0.05 + 0.1 * torch.rand(64, generator=g)) * torch.where(torch.rand(64, generator=g) < 0.5, -1.0, 1.0)
    return linear_model(torch.stack([torch.zeros(64), d])), d


def reference(x: torch.Tensor, y: torch.Tensor, d: torch.Tensor, seed: int) -> torch.Tensor:
    """R+FGSM in closed form for the binary linear model.

    With logits (0, d·x), ∂CE/∂x = p₁·d for y = 0 and −p₀·d for y = 1, so sign ∇ₓ CE = (1 − 2y)·sign(d)
    wherever 0 < p < 1 (always, for these small logits) — at x' as at any other point.
    """
    torch.manual_seed(seed)
    noise_sign = torch.where(torch.randn_like(x) >= 0, 1.0, -1.0)
    x_rand = (x + ALPHA * noise_sign).clamp(0, 1)
    grad_sign = (1 - 2 * y).view(-1, 1, 1, 1).float() * torch.sign(d).view(1, 1, 8, 8)
    return (x_rand + (EPS - ALPHA) * grad_sign).clamp(0, 1)


@pytest.mark.parametrize("backend", list(rand_fgsm.BACKENDS))
def test_matches_hand_computed_reference(backend: str) -> None:
    model, d = binary_linear()
    x = images(16)
    y = torch.arange(16) % 2
    torch.manual_seed(5)
    x_adv = rand_fgsm.build(backend=backend, eps=EPS, alpha=ALPHA)(model, x, y)
    expected = reference(x, y, d, seed=5)
    assert torch.equal(x_adv, expected)
    assert (x_adv - x).abs().max() <= EPS + 1e-6


@pytest.mark.parametrize("backend", list(rand_fgsm.BACKENDS))
def test_fgsm_step_uses_gradient_at_the_random_point(backend: str) -> None:
    """On a non-linear model: the output is the library FGSM (ε − α) applied at x', not at x."""
    model = tiny_conv()
    x = images()
    y = model(x).argmax(1)
    torch.manual_seed(11)
    x_adv = rand_fgsm.build(backend=backend)(model, x, y)
    torch.manual_seed(11)
    x_rand = (x + ALPHA * torch.where(torch.randn_like(x) >= 0, 1.0, -1.0)).clamp(0, 1)
    expected = fgsm.build(backend=backend, eps=EPS - ALPHA)(model, x_rand, y)
    assert torch.equal(x_adv, expected)


def test_alpha_zero_is_fgsm() -> None:
    model = tiny_conv()
    x = images()
    y = model(x).argmax(1)
    assert torch.equal(rand_fgsm.build(alpha=0.0)(model, x, y), fgsm.build()(model, x, y))
