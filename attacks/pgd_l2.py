"""L2 PGD: ``steps`` steps of L2 length ``alpha`` along the normalised gradient, each projected onto the L2
eps-ball and [0, 1], optionally from a random start in the ball.

For comparing with Athalye et al. (2018) on Defense-GAN, whose MNIST budget is a normalised L2 of 0.005,
i.e. ‖δ‖₂ ≈ 4 on 28×28 images; hence the default eps 4.0 (alpha = 2.5·eps/steps, Madry's rule).
Random starts differ between backends (torchattacks: radius uniform in [0, eps]; foolbox: uniform in
the ball), so with ``random_start`` they agree in distribution only.
"""
from __future__ import annotations

from typing import Any, Mapping

from attacks import _foolbox, _torchattacks
from attacks.base import Attack, pick_backend, require, require_positive, resolve

DEFAULTS = {"eps": 4.0, "alpha": 0.25, "steps": 40, "random_start": True}


def _torchattacks_pgd_l2(model, x, y, target, params: Mapping[str, Any]):
    atk = _torchattacks.make("PGDL2", model, eps=params["eps"], alpha=params["alpha"], steps=params["steps"],
                             random_start=params["random_start"])
    return _torchattacks.run(atk, x, y, target)


def _foolbox_pgd_l2(model, x, y, target, params: Mapping[str, Any]):
    fb = _foolbox.load()
    attack = fb.attacks.L2PGD(abs_stepsize=params["alpha"], steps=params["steps"],
                              random_start=params["random_start"])
    return _foolbox.run(attack, model, x, y, target, epsilon=params["eps"])[0]


BACKENDS = {"torchattacks": _torchattacks_pgd_l2, "foolbox": _foolbox_pgd_l2}


def build(*, backend: str = "torchattacks", **params: Any) -> Attack:
    """L2 PGD. Params: ``eps`` ≥ 0 (4.0), ``alpha`` > 0 (0.25), ``steps`` > 0 (40), ``random_start`` (True)."""
    run = pick_backend("pgd-l2", backend, BACKENDS)
    p = resolve("pgd-l2", params, DEFAULTS)
    require("pgd-l2", p["eps"] >= 0.0, f"eps must be >= 0, got eps={p['eps']}")
    require_positive("pgd-l2", p, "alpha", "steps")
    return Attack(key="pgd-l2", backend=backend, norm="l2", eps=p["eps"], params=p, run=run)
