"""FGSM (Goodfellow et al. 2015), L∞: ``x_adv = clip(x + eps·sign(∇ₓ CE(f(x), y)), 0, 1)``.

Targeted: ``x − eps·sign(∇ₓ CE(f(x), target))``. Both backends compute the same point; they can differ
only where a gradient entry is exactly zero or underflows (torchattacks averages the loss over the batch,
foolbox sums it).
"""
from __future__ import annotations

from typing import Any, Mapping

from attacks import _foolbox, _torchattacks
from attacks.base import Attack, check_linf_eps, pick_backend, resolve

DEFAULTS = {"eps": 0.3}


def _torchattacks_fgsm(model, x, y, target, params: Mapping[str, Any]):
    return _torchattacks.run(_torchattacks.make("FGSM", model, eps=params["eps"]), x, y, target)


def _foolbox_fgsm(model, x, y, target, params: Mapping[str, Any]):
    fb = _foolbox.load()
    # foolbox's FGSM rejects targeted criteria; one BIM step of relative size 1 is the same computation.
    attack = (fb.attacks.LinfFastGradientAttack() if target is None
              else fb.attacks.LinfBasicIterativeAttack(rel_stepsize=1.0, steps=1, random_start=False))
    return _foolbox.run(attack, model, x, y, target, epsilon=params["eps"])[0]


BACKENDS = {"torchattacks": _torchattacks_fgsm, "foolbox": _foolbox_fgsm}


def build(*, backend: str = "torchattacks", **params: Any) -> Attack:
    """FGSM. Params: ``eps`` in [0, 1] (default 0.3, Defense-GAN's setting). Backends: torchattacks, foolbox."""
    run = pick_backend("fgsm", backend, BACKENDS)
    p = resolve("fgsm", params, DEFAULTS)
    check_linf_eps("fgsm", p["eps"])
    return Attack(key="fgsm", backend=backend, norm="linf", eps=p["eps"], params=p, run=run)
