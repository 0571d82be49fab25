"""Defense-GAN purifier: shapes, restart selection, determinism, agreement with the reference loop."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.errors import BenchError
from defenses.defensegan.purifier import DefenseGANPurifier, lr_at
from defenses.defensegan.reference import reference_project


class TinyGen(nn.Module):
    """latent 4 -> 1x4x4 images in [0, 1]."""

    latent_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z)).view(-1, 1, 4, 4)


@pytest.fixture
def gen() -> TinyGen:
    torch.manual_seed(0)
    return TinyGen()


def _images(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(1))


def test_shapes_range_and_frozen(gen):
    p = DefenseGANPurifier(gen, L=5, R=3, lr=1.0)
    rec, diag = p.purify(_images())
    assert rec.shape == (3, 1, 4, 4) and diag["rec_mse"].shape == (3,)
    assert rec.min() >= 0 and rec.max() <= 1
    assert not any(q.requires_grad for q in gen.parameters()) and not gen.training
    assert p.stochastic


def test_best_restart_is_chosen(gen):
    torch.manual_seed(3)
    x, R = _images(2), 4
    z0 = torch.randn(2 * R, 4) * 3.0
    z0[1] = torch.zeros(4)  # image 0, restart 1: a different start, so restarts end at different errors
    p = DefenseGANPurifier(gen, L=10, R=R, lr=1.0)
    rec, err, _ = p.project(x, z0)
    single = DefenseGANPurifier(gen, L=10, R=1, lr=1.0)
    per = torch.stack([single.project(x.repeat_interleave(R, 0)[k:k + 1], z0[k:k + 1])[1][0]
                       for k in range(2 * R)]).view(2, R)
    assert per[0].unique().numel() == R  # restarts really differ
    torch.testing.assert_close(err, per.min(1).values)
    for i in range(2):
        k = i * R + int(per[i].argmin())
        torch.testing.assert_close(rec[i], single.project(x.repeat_interleave(R, 0)[k:k + 1], z0[k:k + 1])[0][0])


def test_deterministic_under_seed(gen):
    p = DefenseGANPurifier(gen, L=5, R=3, lr=1.0)
    torch.manual_seed(7)
    a = p(_images())
    torch.manual_seed(7)
    b = p(_images())
    torch.manual_seed(8)
    c = p(_images())
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("schedule", ["constant", "step"])
def test_batched_matches_reference(gen, schedule):
    x, R = _images(3), 2
    z0 = torch.randn(3 * R, 4, generator=torch.Generator().manual_seed(5)) * 0.5
    kw = dict(L=10, R=R, lr=2.0, momentum=0.7, lr_schedule=schedule)
    ref, ref_err = reference_project(gen, x, z0=z0, **kw)
    for max_batch in (1, 3, 100):  # chunking must not change the result
        rec, err, _ = DefenseGANPurifier(gen, max_batch=max_batch, **kw).project(x, z0)
        torch.testing.assert_close(rec, ref, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(err, ref_err, atol=1e-6, rtol=1e-4)


def test_lr_schedule_switch_changes_result(gen):
    z0 = torch.randn(3 * 2, 4, generator=torch.Generator().manual_seed(5))
    a = DefenseGANPurifier(gen, L=10, R=2, lr=2.0, lr_schedule="constant").project(_images(), z0)[0]
    b = DefenseGANPurifier(gen, L=10, R=2, lr=2.0, lr_schedule="step").project(_images(), z0)[0]
    assert not torch.allclose(a, b)
    assert lr_at(159, lr=10, L=200, schedule="step") == 10 and lr_at(160, lr=10, L=200, schedule="step") == 1.0
    assert lr_at(199, lr=10, L=200, schedule="constant") == 10


def test_z_init_scales(gen):
    torch.manual_seed(0)
    code = DefenseGANPurifier(gen, R=500, z_init="code").initial_latents(2)
    prior = DefenseGANPurifier(gen, R=500, z_init="prior").initial_latents(2)
    assert abs(code.std().item() - 0.5) < 0.05 and abs(prior.std().item() - 1.0) < 0.1


def test_unrolled_gradient_reaches_x(gen):
    x = _images(2).requires_grad_(True)
    rec = DefenseGANPurifier(gen, L=4, R=2, lr=1.0).unrolled(x)
    rec.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    x2 = _images(2).requires_grad_(True)
    DefenseGANPurifier(gen, L=50, R=2, lr=1.0, unrolled_steps=2).unrolled(x2).sum().backward()
    assert x2.grad is not None


@pytest.mark.parametrize("kw, field", [({"z_init": "uniform"}, "z_init"), ({"lr_schedule": "cosine"}, "lr_schedule"),
                                       ({"R": 0}, "R")])
def test_invalid_options(gen, kw, field):
    with pytest.raises(BenchError, match=field):
        DefenseGANPurifier(gen, **kw)


def test_perf_benchmark_keys():
    from defenses.defensegan.nets import Generator
    from defenses.defensegan.perf import run_purify_benchmark

    torch.manual_seed(0)
    out = run_purify_benchmark(Generator(), torch.rand(2, 1, 28, 28), L=1, R=2, reference_images=1, ceiling_n=128)
    for key in ("reference_images_per_s", "batched_images_per_s", "raw_images_per_s", "batched_gflops",
                "ceiling_gflops", "raw_over_batched", "batched_over_reference", "batched_over_ceiling"):
        assert out[key] > 0
