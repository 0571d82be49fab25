"""The Defense-GAN tables' baselines: ``magnet`` (reformer + detectors) and ``adv-training``."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from defenses import adv_training, magnet, magnet_nets
from defenses.base import DefenseContext, Identity, Purified
from tests.conftest import needs_mnist


def _split(name: str, n: int, seed: int) -> SimpleNamespace:
    """A stand-in for bench.data's Split: 8×8 images in [0, 1] (blobs, so an autoencoder has something to learn)."""
    g = torch.Generator().manual_seed(seed)
    x = F.avg_pool2d(torch.rand(n, 1, 16, 16, generator=g), 2).clamp(0, 1)
    return SimpleNamespace(x=x, y=torch.randint(0, 10, (n,), generator=g), sha256=f"fake-{name}-{n}-{seed}")


def _ctx(tmp_path, *, seed: int = 0, profile: dict | None = None, train_classifier=None) -> DefenseContext:
    torch.manual_seed(123)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    splits = {"train": _split("train", 48, 1), "val": _split("val", 20, 2)}
    return DefenseContext(dataset="tiny", model="lin", classifier=classifier, device=torch.device("cpu"), seed=seed,
                          profile={"magnet_epochs": 2, **(profile or {})}, cache_dir=tmp_path / "cache",
                          train_classifier=train_classifier or (lambda **kw: classifier), load_split=splits.__getitem__)


def test_magnet_builds_with_shapes_range_and_diagnostics(tmp_path):
    parts = magnet.build(_ctx(tmp_path), fpr=0.1)
    x = _split("test", 5, 3).x
    out, diag = parts.purifier.purify(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert set(diag) == {"magnet_l2", "magnet_l1", "magnet_flag"}
    assert all(v.shape == (5,) for v in diag.values())
    assert set(diag["magnet_flag"].tolist()) <= {0, 1} and (diag["magnet_l1"] >= 0).all()
    torch.testing.assert_close(diag["magnet_l2"], (x - out).square().mean((1, 2, 3)))
    notes = parts.notes
    assert set(notes["thresholds"]) == {"magnet_l2", "magnet_l1"} and notes["fpr"] == 0.1
    assert {m["source"] for m in notes["autoencoders"].values()} == {"trained"}
    assert not parts.purifier.stochastic


def test_magnet_thresholds_flag_the_fpr_share_of_validation(tmp_path):
    ctx = _ctx(tmp_path)
    parts = magnet.build(ctx, fpr=0.1)
    _, diag = parts.purifier.purify(ctx.load_split("val").x)
    for name in ("magnet_l2", "magnet_l1"):  # MagNet: the 2nd largest of 20 scores is the threshold
        assert int((diag[name] >= parts.notes["thresholds"][name]).sum()) == 2
    assert 2 <= int(diag["magnet_flag"].sum()) <= 4


def test_magnet_second_build_hits_the_cache(tmp_path, monkeypatch):
    first = magnet.build(_ctx(tmp_path), fpr=0.1)
    monkeypatch.setattr(magnet_nets, "_fit", lambda *a, **k: pytest.fail("retrained despite a cache hit"))
    second = magnet.build(_ctx(tmp_path), fpr=0.1)
    assert {m["source"] for m in second.notes["autoencoders"].values()} == {"cache"}
    x = _split("test", 4, 3).x
    torch.testing.assert_close(first.purifier(x), second.purifier(x))


def test_magnet_corrupt_checkpoint_is_retrained(tmp_path):
    magnet.build(_ctx(tmp_path), fpr=0.1)
    for pt in (tmp_path / "cache" / "magnet").glob("*.pt"):
        pt.write_bytes(pt.read_bytes()[:-7])
    again = magnet.build(_ctx(tmp_path), fpr=0.1)
    assert {m["source"] for m in again.notes["autoencoders"].values()} == {"trained"}


def test_magnet_training_is_deterministic_under_seed(tmp_path):
    x = _split("test", 4, 3).x
    a = magnet.build(_ctx(tmp_path / "a", seed=5), fpr=0.1).purifier(x)
    b = magnet.build(_ctx(tmp_path / "b", seed=5), fpr=0.1).purifier(x)
    c = magnet.build(_ctx(tmp_path / "c", seed=6), fpr=0.1).purifier(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_magnet_build_leaves_the_global_rng_alone(tmp_path):
    ctx = _ctx(tmp_path)
    torch.manual_seed(9)
    magnet.build(ctx, fpr=0.1)
    after = torch.rand(3)
    torch.manual_seed(9)
    assert torch.equal(after, torch.rand(3))


def test_magnet_is_differentiable_for_the_unrolled_threat(tmp_path):
    ctx = _ctx(tmp_path)
    parts = magnet.build(ctx, fpr=0.1)
    x = _split("test", 3, 3).x.requires_grad_(True)
    loss = F.cross_entropy(Purified(parts.purifier, parts.classifier, unrolled=True)(x), torch.tensor([0, 1, 2]))
    grad, = torch.autograd.grad(loss, x)
    assert grad.abs().sum() > 0


def test_magnet_divergence_detector(tmp_path):
    parts = magnet.build(_ctx(tmp_path), fpr=0.1, temperatures=[10, 40])
    _, diag = parts.purifier.purify(_split("test", 4, 3).x)
    for key in ("magnet_jsd_T10", "magnet_jsd_T40"):
        assert diag[key].shape == (4,) and (diag[key] >= -1e-7).all() and key in parts.notes["thresholds"]
    logits = torch.randn(6, 10)
    assert torch.allclose(magnet._jsd(logits, logits, 1.0), torch.zeros(6), atol=1e-6)
    far = torch.tensor([[50.0, -50.0]])
    assert math.isclose(float(magnet._jsd(far, far.flip(1), 1.0)), math.log(2), rel_tol=1e-4)


@pytest.mark.parametrize("kwargs, profile, match", [
    ({"fpr": 0.001}, {}, "fpr"),  # 0.001 × 20 validation images drops nothing
    ({"fpr": 1.5}, {}, "fpr"),
    ({"temperatures": [0]}, {}, "temperatures"),
    ({}, {"magnet_epochs": 0}, "magnet_epochs"),
    ({}, {"magnet_train_images": "all"}, "magnet_train_images"),
    ({}, {"magnet_lr": -1}, "magnet_lr"),
])
def test_magnet_rejects_bad_settings(tmp_path, kwargs, profile, match):
    with pytest.raises(BenchError, match=match):
        magnet.build(_ctx(tmp_path, profile=profile), **{"fpr": 0.1, **kwargs})


def test_mnist_autoencoder_architectures():
    ae1 = magnet_nets.MagNetAutoencoder(magnet_nets.STRUCTURES["I"])
    kinds = [type(m).__name__ for m in ae1.net if not isinstance(m, nn.Sigmoid)]
    assert kinds == ["Conv2d", "AvgPool2d", "Conv2d", "Conv2d", "Upsample", "Conv2d", "Conv2d"]
    assert [m.out_channels for m in ae1.net if isinstance(m, nn.Conv2d)] == [3, 3, 3, 3, 1]
    ae2 = magnet_nets.MagNetAutoencoder(magnet_nets.STRUCTURES["II"])
    assert [m.out_channels for m in ae2.net if isinstance(m, nn.Conv2d)] == [3, 3, 1]
    assert ae1(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)


def test_adv_training_trains_with_fgsm_eps(tmp_path):
    calls = []
    trained = nn.Linear(1, 1)
    ctx = _ctx(tmp_path, train_classifier=lambda **kw: calls.append(kw) or trained)
    parts = adv_training.build(ctx)
    assert calls == [{"adv_eps": 0.15}] and parts.classifier is trained
    assert isinstance(parts.purifier, Identity) and parts.notes["eps"] == 0.15
    assert "NOT FOUND" in parts.notes["eps_source"]
    adv_training.build(ctx, eps=0.3)
    assert calls[-1] == {"adv_eps": 0.3}
    for bad in (0, -0.1, 2.0, "0.1"):
        with pytest.raises(BenchError, match="eps"):
            adv_training.build(ctx, eps=bad)


def test_training_loop_adversarial_step_matches_the_recipe():
    """One batch of bench.models.training._fit with adv_eps equals the hand-written cleverhans step."""
    from bench.models.training import TrainConfig, _fit

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x, y = torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    ref = copy.deepcopy(model)
    _fit(model, x, y, TrainConfig(epochs=1, batch_size=6, lr=0.05, adv_eps=0.2), seed=0,
         device=torch.device("cpu"), label="t")
    xg = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(ref(xg), y), xg)
    x_adv = (x + 0.2 * grad.sign()).clamp(0, 1)
    opt = torch.optim.Adam(ref.parameters(), lr=0.05)
    ((F.cross_entropy(ref(x), y) + F.cross_entropy(ref(x_adv), y)) / 2).backward()
    opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.slow
@needs_mnist
def test_magnet_quick_reformer_on_mnist(tmp_path):
    """Default CPU recipe on real MNIST (~1.5 min): the reformer reconstructs clean digits closely."""
    from bench import data

    classifier = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    ctx = DefenseContext(dataset="mnist", model="lin", classifier=classifier, device=torch.device("cpu"), seed=0,
                         profile={}, cache_dir=tmp_path, train_classifier=lambda **kw: classifier,
                         load_split=lambda s: data.load("mnist", s))
    parts = magnet.build(ctx)
    assert parts.notes["autoencoders"]["I"]["val_mse"] < 0.01
    test = data.load("mnist", "test").x[:500]
    _, diag = parts.purifier.purify(test)
    assert float(diag["magnet_flag"].float().mean()) < 0.05
