"""Conformance tests over every built-in attack and backend, plus the error paths.

Every (key, backend) in ``attacks.BUILTIN`` is checked for free: shape/dtype/device, range, ε-ball,
seed reproducibility, model modes and ``requires_grad`` left as found, targeted mode.
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import attacks
from attacks import BUILTIN
from bench.errors import BenchError, SpecError
from bench.registry import import_target

TOL = 1e-5  # the harness's ε-ball tolerance
# Few steps, so that the whole table runs in seconds; conformance, not strength.
FAST = {"cw": {"steps": 10}, "pgd": {"steps": 3}, "pgd-l2": {"steps": 3, "eps": 1.0, "alpha": 0.4}}
# Few but large steps, for an attack that has to reach a target.
FAST_STRONG = {**FAST, "pgd": {"steps": 3, "alpha": 0.1}, "pgd-l2": {"steps": 3, "eps": 3.0, "alpha": 1.0}}


def backends(key: str) -> list[str]:
    return list(importlib.import_module(BUILTIN[key].partition(":")[0]).BACKENDS)


def build(key: str, **params):
    return import_target(BUILTIN[key])(**params)


CASES = [(key, backend) for key in BUILTIN for backend in backends(key)]
IDS = [f"{key}-{backend}" for key, backend in CASES]


def tiny_conv(seed: int = 0) -> nn.Module:
    """(N, 1, 8, 8) → (N, 3); tanh keeps input gradients free of exact zeros."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(256, 3)).eval()


def linear_model(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Module:
    """(N, 1, 8, 8) → (N, K) logits ``W·x + b`` with ``weight`` (K, 64)."""
    linear = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(torch.zeros(weight.shape[0]) if bias is None else bias)
    return nn.Sequential(nn.Flatten(), linear).eval()


def images(n: int = 8, *, low: float = 0.0, high: float = 1.0, seed: int = 1) -> torch.Tensor:
    """(n, 1, 8, 8) float32 uniform in [low, high]."""
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(n, 1, 8, 8, generator=g)


def dist(x_adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    d = (x_adv - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


@pytest.mark.parametrize(("key", "backend"), CASES, ids=IDS)
def test_conformance(key: str, backend: str) -> None:
    model = tiny_conv()
    x = images()
    y = model(x).argmax(1)
    attack = build(key, backend=backend, **FAST.get(key, {}))
    assert (attack.key, attack.backend) == (key, backend)
    json.dumps(attack.params)  # the record must be able to store it

    torch.manual_seed(0)
    x_adv = attack(model, x, y)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert not x_adv.requires_grad
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    if attack.eps is not None:
        assert dist(x_adv, x, attack.norm).max() <= attack.eps + TOL
    torch.manual_seed(0)
    assert torch.equal(attack(model, x, y), x_adv), "not reproducible under torch.manual_seed"

    # Mixed train/eval flags and requires_grad come back exactly as they were; no .grad accumulates.
    model.train()
    model[0].eval()
    model[3].weight.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    attack(model, x, y)
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


class _FixedWeights(nn.Module):
    """A model without parameters (like a gallery head on raw pixels): logits = x·W with W a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w", torch.randn(64, 3, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


@pytest.mark.parametrize(("key", "backend"), CASES, ids=IDS)
def test_parameter_free_model_is_attacked_without_stray_output(key: str, backend: str, capfd) -> None:
    model, x = _FixedWeights(), images()
    y = model(x).argmax(1)
    x_adv = build(key, backend=backend, **FAST.get(key, {}))(model, x, y)
    assert x_adv.shape == x.shape and not torch.equal(x_adv, x)
    assert capfd.readouterr().out == "", "an attack library printed to stdout"


@pytest.mark.parametrize(("key", "backend"), CASES, ids=IDS)
def test_targeted_moves_towards_target(key: str, backend: str) -> None:
    torch.manual_seed(3)
    model = linear_model(torch.randn(3, 64))
    x = images(low=0.3, high=0.7)
    y = model(x).argmax(1)
    target = (y + 1) % 3
    attack = build(key, backend=backend, **FAST_STRONG.get(key, {}))
    torch.manual_seed(0)
    x_adv = attack(model, x, y, target=target)
    hits = (model(x_adv).argmax(1) == target).float().mean().item()
    assert hits >= 0.75, f"{attack!r} reached the target on {hits:.0%} of samples"


@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_backends_agree(targeted: bool) -> None:
    model = tiny_conv()
    x = images()
    y = model(x).argmax(1)
    target = (y + 1) % 3 if targeted else None
    x_req = x.clone().requires_grad_()
    grad, = torch.autograd.grad(nn.functional.cross_entropy(model(x_req), target if targeted else y), x_req)
    assert grad.ne(0).all(), "test precondition: the gradient has no zero entries"
    out = {b: build("fgsm", backend=b, eps=0.1)(model, x, y, target=target) for b in backends("fgsm")}
    torch.testing.assert_close(out["foolbox"], out["torchattacks"], atol=1e-6, rtol=0)


def test_repr_is_deterministic_and_complete() -> None:
    a, b = build("pgd", backend="foolbox", steps=7), build("pgd", backend="foolbox", steps=7)
    assert repr(a) == repr(b) == "pgd(backend='foolbox', eps=0.3, alpha=0.01, steps=7, random_start=True)"
    cw = build("cw", preset="paper", steps=5)
    assert cw.eps is None and cw.norm == "l2"
    assert cw.params == {"preset": "paper", "binary_search_steps": 1, "steps": 5, "lr": 10.0,
                         "initial_const": 100.0, "confidence": 0.0, "abort_early": True}


def test_string_values_are_parsed() -> None:
    attack = build("pgd", eps="0.1", steps="5", random_start="false")
    assert attack.params == {"eps": 0.1, "alpha": 0.01, "steps": 5, "random_start": False}


@pytest.mark.parametrize(("key", "params", "match"), [
    ("fgsm", {"backend": "foo"}, r"^fgsm: unknown backend 'foo'; valid: foolbox, torchattacks$"),
    ("fgsm", {"epsilon": 0.1}, r"^fgsm: unknown parameter 'epsilon'; valid: backend, eps$"),
    ("fgsm", {"eps": 1.5}, r"^fgsm: eps must be in \[0, 1\], got eps=1.5$"),
    ("fgsm", {"eps": "abc"}, r"^fgsm: eps must be a finite number, got eps='abc'$"),
    ("fgsm", {"eps": True}, r"eps must be a finite number, got eps=True"),
    ("fgsm", {"eps": float("nan")}, r"eps must be a finite number"),
    ("rand-fgsm", {"alpha": 0.3}, r"^rand-fgsm: alpha must be >= 0 and < eps, got alpha=0.3, eps=0.3$"),
    ("rand-fgsm", {"alpha": -0.01}, r"alpha must be >= 0 and < eps, got alpha=-0.01"),
    ("pgd", {"steps": 0}, r"^pgd: steps must be > 0, got steps=0$"),
    ("pgd", {"steps": 2.5}, r"^pgd: steps must be an integer, got steps=2.5$"),
    ("pgd", {"alpha": 0}, r"alpha must be > 0, got alpha=0.0"),
    ("pgd", {"random_start": "yes"}, r"random_start must be true or false, got random_start='yes'"),
    ("pgd-l2", {"eps": -1}, r"^pgd-l2: eps must be >= 0, got eps=-1.0$"),
    ("cw", {"preset": "slow"}, r"^cw: unknown preset 'slow'; valid: paper, default, fast$"),
    ("cw", {"lr": 0}, r"^cw: lr must be > 0, got lr=0.0$"),
    ("cw", {"confidence": -1}, r"confidence must be >= 0, got confidence=-1.0"),
    ("cw", {"max_iterations": 100}, r"^cw: unknown parameter 'max_iterations'; valid: backend, preset, "
                                     r"binary_search_steps, steps, lr, initial_const, confidence, abort_early$"),
    ("cw", {"backend": "torchattacks", "preset": "default"},
     r"^cw: backend 'torchattacks' has no binary search; binary_search_steps must be 1, got binary_search_steps=9$"),
    ("cw", {"backend": "torchattacks", "abort_early": False}, r"abort_early must be true, got abort_early=False"),
])
def test_bad_parameters_raise_spec_error(key: str, params: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        build(key, **params)
    assert issubclass(SpecError, BenchError)


def test_bad_inputs_raise_value_error() -> None:
    attack, model = build("fgsm"), tiny_conv()
    with pytest.raises(ValueError, match=r"expected x in \[0, 1\]"):
        attack(model, images() + 1, torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected y of shape \(8,\)"):
        attack(model, images(), torch.zeros(7, dtype=torch.long))


def test_building_attacks_does_not_import_torch() -> None:
    """``bench list``/``validate`` can build every attack to check its spec without importing torch."""
    code = ("import sys; from attacks import BUILTIN; from bench.registry import import_target\n"
            "for target in BUILTIN.values(): import_target(target)()\n"
            "heavy = [m for m in ('torch', 'torchattacks', 'foolbox') if m in sys.modules]\n"
            "assert not heavy, heavy")
    repo_root = Path(attacks.__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)
