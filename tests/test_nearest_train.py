"""The ``nearest-train`` diagnostic: exact nearest-neighbour projection onto the training images."""
from __future__ import annotations

import torch

from defenses.nearest_train import NearestTrain


def _bank(n: int = 300) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_matches_brute_force_whatever_the_chunk():
    bank = _bank()
    x = (bank[[7, 123, 299]] + 0.1 * torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    brute = ((x.flatten(1)[:, None] - bank.flatten(1)[None]) ** 2).mean(2)
    for chunk in (1, 64, 1000):
        out, diag = NearestTrain(bank, chunk=chunk).purify(x)
        assert torch.equal(out, bank[brute.argmin(1)])
        torch.testing.assert_close(diag["rec_mse"], brute.min(1).values)


def test_a_training_image_maps_to_itself_with_zero_error():
    bank = _bank()
    out, diag = NearestTrain(bank).purify(bank[:5])
    assert torch.equal(out, bank[:5]) and torch.equal(diag["rec_mse"], torch.zeros(5))


def test_unrolled_gradient_is_the_maps_own_zero_derivative():
    bank = _bank(20)
    x = bank[:2].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(NearestTrain(bank).unrolled(x).sum(), x)
    assert torch.equal(grad, torch.zeros_like(x))
