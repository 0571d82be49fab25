"""RAND+FGSM (Tramèr et al. 2018, "Ensemble Adversarial Training"), as run by Defense-GAN's whitebox.py.

    x' = clip(x + alpha·sign(N(0, I)), 0, 1)
    x_adv = clip(x' + (eps − alpha)·sign(∇ₓ' CE(f(x'), y)), 0, 1)

so ``‖x_adv − x‖∞ ≤ eps``. The random sign is ±1, never 0, and comes from torch's global RNG. The FGSM step
is the backend library's FGSM with budget ``eps − alpha`` run at x'.

This is not torchattacks' ``RFGSM``: since torchattacks 3.0 that attack steps by ``alpha`` instead of
``eps − alpha`` and is iterative by default, so it cannot express Defense-GAN's (eps 0.3, alpha 0.05).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Mapping

from attacks import fgsm
from attacks.base import Attack, check_linf_eps, pick_backend, require, resolve

DEFAULTS = {"eps": 0.3, "alpha": 0.05}


def _rand_fgsm(fgsm_step, model, x, y, target, params: Mapping[str, Any]):
    import torch

    signs = torch.where(torch.randn_like(x) >= 0, 1.0, -1.0)
    x_rand = (x + params["alpha"] * signs).clamp(0.0, 1.0)
    return fgsm_step(model, x_rand, y, target, {"eps": params["eps"] - params["alpha"]})


BACKENDS = {name: partial(_rand_fgsm, step) for name, step in fgsm.BACKENDS.items()}


def build(*, backend: str = "torchattacks", **params: Any) -> Attack:
    """RAND+FGSM. Params: ``eps`` in [0, 1] (default 0.3), ``alpha`` with 0 ≤ alpha < eps (default 0.05)."""
    run = pick_backend("rand-fgsm", backend, BACKENDS)
    p = resolve("rand-fgsm", params, DEFAULTS)
    check_linf_eps("rand-fgsm", p["eps"])
    require("rand-fgsm", 0.0 <= p["alpha"] < p["eps"],
            f"alpha must be >= 0 and < eps, got alpha={p['alpha']}, eps={p['eps']}")
    return Attack(key="rand-fgsm", backend=backend, norm="linf", eps=p["eps"], params=p, run=run)
