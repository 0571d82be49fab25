"""L∞ PGD (Madry et al. 2018): ``steps`` signed-gradient steps of size ``alpha``, each projected onto the
eps-ball and [0, 1], optionally from a uniform random start in the ball. Used for the adaptive (BPDA) rows.

Defaults are Madry et al.'s MNIST setting: eps 0.3, alpha 0.01, 40 steps, random start. The two backends
draw the random start differently, so with ``random_start`` they agree in distribution only.
"""
from __future__ import annotations

from typing import Any, Mapping

from attacks import _foolbox, _torchattacks
from attacks.base import Attack, check_linf_eps, pick_backend, require_positive, resolve

DEFAULTS = {"eps": 0.3, "alpha": 0.01, "steps": 40, "random_start": True}


def _torchattacks_pgd(model, x, y, target, params: Mapping[str, Any]):
    atk = _torchattacks.make("PGD", model, eps=params["eps"], alpha=params["alpha"], steps=params["steps"],
                             random_start=params["random_start"])
    return _torchattacks.run(atk, x, y, target)


def _foolbox_pgd(model, x, y, target, params: Mapping[str, Any]):
    fb = _foolbox.load()
    attack = fb.attacks.LinfPGD(abs_stepsize=params["alpha"], steps=params["steps"],
                                random_start=params["random_start"])
    return _foolbox.run(attack, model, x, y, target, epsilon=params["eps"])[0]


BACKENDS = {"torchattacks": _torchattacks_pgd, "foolbox": _foolbox_pgd}


def build(*, backend: str = "torchattacks", **params: Any) -> Attack:
    """L∞ PGD. Params: ``eps`` in [0, 1] (0.3), ``alpha`` > 0 (0.01), ``steps`` > 0 (40), ``random_start`` (True)."""
    run = pick_backend("pgd", backend, BACKENDS)
    p = resolve("pgd", params, DEFAULTS)
    check_linf_eps("pgd", p["eps"])
    require_positive("pgd", p, "alpha", "steps")
    return Attack(key="pgd", backend=backend, norm="linf", eps=p["eps"], params=p, run=run)
