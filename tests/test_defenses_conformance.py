"""Conformance of every registered defense with the contract of ``defenses/base.py``, on tiny stand-ins.

Each defense is built by its registered factory from a fake :class:`DefenseContext` (a linear classifier,
32 + 20 random 28×28 training/validation images) and checked for: output shape and range, per-sample
diagnostics, eval mode, determinism under a seed, and a BPDA gradient that reaches the input. Defense-GAN
gets a tiny generator instead of a trained or shipped one (``load_or_train_generator`` is monkeypatched);
a defense registered later by a plug-in is tested for free, with default parameters.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.builtins import register_builtins
from bench.registry import DEFENSES
from defenses.base import BPDA, DefenseContext, Purified

register_builtins()

# tiny settings per defense (parameters of the factory, profile keys of the context)
PARAMS = {"defense-gan": {"L": 2, "R": 2}, "median": {"size": 3}, "magnet": {"fpr": 0.1}}
PROFILE = {"magnet_epochs": 1, "magnet_train_images": 32, "rec_train_images": 4}
VARIANTS = [(name, PARAMS.get(name, {})) for name in sorted(DEFENSES.names())]
VARIANTS.append(("defense-gan", {"L": 2, "R": 2, "variant": "rec"}))


def _split(name: str, n: int, seed: int) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    x = F.avg_pool2d(torch.rand(n, 1, 56, 56, generator=g), 2).clamp(0, 1)
    return SimpleNamespace(x=x, y=torch.randint(0, 10, (n,), generator=g), sha256=f"fake-{name}-{n}-{seed}")


def _classifier() -> nn.Module:
    torch.manual_seed(11)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    from defenses.defensegan import factory
    from defenses.defensegan.nets import Generator

    def tiny_generator(dataset, **kw):
        torch.manual_seed(5)
        gen = Generator(latent_dim=8, dim=4).eval().requires_grad_(False)
        return gen, {"source": "test stand-in", "iterations": 0, "seed": 5, "key": "tiny"}

    monkeypatch.setattr(factory, "load_or_train_generator", tiny_generator)
    splits = {"train": _split("train", 32, 1), "val": _split("val", 20, 2)}
    calls: list[dict] = []

    def train_classifier(**kw):  # the harness trains here; the stand-in applies the transform and records the call
        calls.append(kw)
        if kw.get("transform") is not None:
            images = splits["train"].x[:kw.get("train_images") or 32]
            kw["trained_on"] = kw["transform"](images)
        return _classifier()

    context = DefenseContext(dataset="mnist", model="lin", classifier=_classifier(), device=torch.device("cpu"),
                             seed=0, profile=dict(PROFILE), cache_dir=tmp_path / "cache",
                             train_classifier=train_classifier, load_split=splits.__getitem__)
    return context, calls


def _build(ctx: DefenseContext, name: str, params: dict):
    parts = DEFENSES.get(name)(ctx, **params)
    parts.purifier.eval()
    parts.classifier.eval()
    return parts


def _images(n: int = 3) -> torch.Tensor:
    return _split("test", n, 9).x


@pytest.mark.parametrize("name,params", VARIANTS, ids=[f"{n}-{p.get('variant', '')}".rstrip("-") for n, p in VARIANTS])
def test_defense_contract(ctx, name, params):
    context, _ = ctx
    parts = _build(context, name, params)
    x = _images()
    torch.manual_seed(0)
    purified, diagnostics = parts.purifier.purify(x)
    assert purified.shape == x.shape and purified.dtype == x.dtype
    assert purified.min() >= 0 and purified.max() <= 1
    assert all(v.shape == (len(x),) for v in diagnostics.values())
    logits = parts.classifier(purified)
    assert logits.shape == (len(x), 10) and torch.isfinite(logits).all()
    modules = [m for part in (parts.purifier, parts.classifier) for m in part.modules()]
    assert not any(m.training for m in modules), "purify/forward must leave every module in eval mode"
    assert isinstance(parts.notes, dict)


@pytest.mark.parametrize("name,params", VARIANTS, ids=[f"{n}-{p.get('variant', '')}".rstrip("-") for n, p in VARIANTS])
def test_defense_is_deterministic_under_seed(ctx, name, params):
    context, _ = ctx
    parts = _build(context, name, params)
    x = _images()
    torch.manual_seed(3)
    first = parts.purifier.purify(x)[0]
    torch.manual_seed(3)
    assert torch.equal(first, parts.purifier.purify(x)[0])
    again = _build(context, name, params)  # a second build (from caches where there are any) agrees too
    torch.manual_seed(3)
    assert torch.equal(first, again.purifier.purify(x)[0])


@pytest.mark.parametrize("name,params", VARIANTS, ids=[f"{n}-{p.get('variant', '')}".rstrip("-") for n, p in VARIANTS])
def test_bpda_and_unrolled_gradients_reach_the_input(ctx, name, params):
    context, _ = ctx
    parts = _build(context, name, params)
    x = _images(2)
    y = torch.tensor([1, 2])
    for surface in (BPDA(parts.purifier, parts.classifier, eot=2), Purified(parts.purifier, parts.classifier,
                                                                             unrolled=True)):
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(surface(xg), y), xg)
        assert grad.shape == x.shape and torch.isfinite(grad).all()
        if isinstance(surface, BPDA):
            assert grad.abs().sum() > 0, "BPDA's identity backward must deliver a non-zero input gradient"


def test_defense_gan_rec_trains_on_exactly_rec_train_images_reconstructions(ctx):
    context, calls = ctx
    parts = _build(context, "defense-gan", {"L": 2, "R": 2, "variant": "rec"})
    (call,) = [c for c in calls if c.get("transform") is not None]
    assert call["train_images"] == PROFILE["rec_train_images"]
    originals = context.load_split("train").x[:PROFILE["rec_train_images"]]
    assert call["trained_on"].shape == originals.shape
    assert not torch.isclose(call["trained_on"], originals).flatten(1).all(1).any(), "every image is reconstructed"
    assert isinstance(call["transform_key"], str) and parts.notes["rec_train_images"] == PROFILE["rec_train_images"]
    assert parts.notes["deviations"] and parts.notes["generator"]["source"] == "test stand-in"
