"""Carlini–Wagner L2 (Carlini & Wagner 2017), a minimal-norm attack: no ε-ball (``eps`` is None).

Minimises ``‖x' − x‖₂² + c·max(Z_y − max_{j≠y} Z_j + confidence, 0)`` over x' = (tanh(w) + 1)/2 with Adam,
searching c by ``binary_search_steps`` rounds starting at ``initial_const``. Samples where no adversarial
example is found come back as the clean image (as in cleverhans, which Defense-GAN used).

Presets (explicit parameters override the preset's):

* ``paper`` (default): Defense-GAN's whitebox.py settings (cleverhans CarliniWagnerL2): 1 binary-search step,
  100 steps, lr 10, c 100, confidence 0, abort_early.
* ``default``: foolbox's own defaults: 9 binary-search steps, 10 000 steps, lr 0.01, c 1e-3.
* ``fast``: a cheap setting for smoke runs (5 × 200 steps, lr 0.05, c 1), from no paper.

Backends:

* ``foolbox`` (default): ``L2CarliniWagnerAttack``, with binary search; its tanh change of variables scales
  by 0.999999, as cleverhans does, so pixels at exactly 0 or 1 can move. foolbox returns an all-zero image
  for failed samples; the adapter replaces those with the clean image.
* ``torchattacks``: ``CW(c, kappa, steps, lr)``, kept selectable for comparison but FLAWED (torchattacks
  3.5.1): (1) x is mapped to atanh(2x − 1) without the 0.999999 factor, so pixels exactly 0 or 1 sit at ±∞
  and never move — most of an MNIST image; (2) its margin ``max((1 − onehot)·Z)`` is wrong when logits are
  negative, because the masked true class contributes a 0 (torchattacks issue #184, fix PR #168 unmerged);
  (3) there is no binary search (``binary_search_steps`` must be 1) and early abort cannot be disabled
  (``abort_early`` must be true), and it stops the whole batch at once. A warning is logged when it runs on
  inputs with many exact 0/1 pixels.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from attacks import _foolbox, _torchattacks
from attacks.base import Attack, pick_backend, require, require_positive, resolve

logger = logging.getLogger(__name__)

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"binary_search_steps": 1, "steps": 100, "lr": 10.0, "initial_const": 100.0,
              "confidence": 0.0, "abort_early": True},
    "default": {"binary_search_steps": 9, "steps": 10000, "lr": 0.01, "initial_const": 1e-3,
                "confidence": 0.0, "abort_early": True},
    "fast": {"binary_search_steps": 5, "steps": 200, "lr": 0.05, "initial_const": 1.0,
             "confidence": 0.0, "abort_early": True},
}
SATURATED_WARN_FRACTION = 0.1  # warn when more than this fraction of pixels is exactly 0 or 1


def _foolbox_cw(model, x, y, target, params: Mapping[str, Any]):
    import torch

    fb = _foolbox.load()
    attack = fb.attacks.L2CarliniWagnerAttack(
        binary_search_steps=params["binary_search_steps"], steps=params["steps"], stepsize=params["lr"],
        confidence=params["confidence"], initial_const=params["initial_const"],
        abort_early=params["abort_early"])
    x_adv, success = _foolbox.run(attack, model, x, y, target, epsilon=None)
    # A failed sample is foolbox's all-zero initial "best"; it must not count as an adversarial example.
    found = success & x_adv.flatten(1).ne(0).any(dim=1)
    return torch.where(found.view(-1, 1, 1, 1), x_adv, x)


def _torchattacks_cw(model, x, y, target, params: Mapping[str, Any]):
    """torchattacks' CW: see the module docstring for its flaws (exact 0/1 pixels frozen, #184 margin)."""
    saturated = ((x == 0) | (x == 1)).float().mean().item()
    if saturated > SATURATED_WARN_FRACTION:
        logger.warning("cw[torchattacks]: %.0f%% of input pixels are exactly 0 or 1 and cannot move in "
                       "torchattacks' tanh space; use backend 'foolbox'", 100 * saturated)
    atk = _torchattacks.make("CW", model, c=params["initial_const"], kappa=params["confidence"],
                             steps=params["steps"], lr=params["lr"])
    return _torchattacks.run(atk, x, y, target)


BACKENDS = {"foolbox": _foolbox_cw, "torchattacks": _torchattacks_cw}


def build(*, backend: str = "foolbox", preset: str = "paper", **params: Any) -> Attack:
    """CW-L2. Params: ``preset`` (paper, default, fast), and overrides ``binary_search_steps`` > 0,
    ``steps`` > 0, ``lr`` > 0, ``initial_const`` > 0, ``confidence`` ≥ 0, ``abort_early``."""
    run = pick_backend("cw", backend, BACKENDS)
    require("cw", isinstance(preset, str) and preset in PRESETS,
            f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    p = resolve("cw", {"preset": preset, **params}, {"preset": preset, **PRESETS[preset]})
    require_positive("cw", p, "binary_search_steps", "steps", "lr", "initial_const")
    require("cw", p["confidence"] >= 0, f"confidence must be >= 0, got confidence={p['confidence']}")
    if backend == "torchattacks":
        require("cw", p["binary_search_steps"] == 1, "backend 'torchattacks' has no binary search; "
                f"binary_search_steps must be 1, got binary_search_steps={p['binary_search_steps']}")
        require("cw", p["abort_early"], "backend 'torchattacks' always aborts early; abort_early must be true, "
                f"got abort_early={p['abort_early']}")
    return Attack(key="cw", backend=backend, norm="l2", eps=None, params=p, run=run)
