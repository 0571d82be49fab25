"""The defense contract.

A defense is a *purifier* composed with a classifier, never a subclass of one:

    defended = Purified(purifier, classifier)       # classifier(purifier(x))

* A :class:`Purifier` maps NCHW float images in [0, 1] to images of the same shape in [0, 1]. It may be
  randomised (``stochastic = True``: e.g. Defense-GAN's random restarts) and may report per-sample
  diagnostics (``purify`` returns them, e.g. ``{"rec_mse": (N,)}``) that the harness stores per sample.
* Some defenses also replace the classifier (adversarial training, Defense-GAN-Rec). Their registered
  factory returns a :class:`DefenseParts` whose ``classifier`` is the one to evaluate.

The harness, not the defense, decides what an attacker differentiates through (the *threat setting*):

* ``oblivious`` — the bare classifier; the purifier is applied afterwards.
* ``unrolled`` — ``Purified`` with autograd through the purifier's own computation (for Defense-GAN: the
  L-step projection, whose gradients vanish — that is the point of measuring it).
* ``bpda`` — forward through the purifier, backward as the identity (Athalye et al. 2018), averaged over
  ``eot`` draws for a stochastic purifier.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

Diagnostics = dict[str, torch.Tensor]


class Purifier(nn.Module):
    """Base class of input purifiers: ``forward(x) -> x'`` with x, x' of shape (N, C, H, W) in [0, 1]."""

    stochastic: bool = False

    def purify(self, x: torch.Tensor) -> tuple[torch.Tensor, Diagnostics]:
        """Purify ``x`` and return per-sample diagnostics (each a tensor of shape (N,))."""
        return self.forward(x), {}

    def unrolled(self, x: torch.Tensor) -> torch.Tensor:
        """Purify while keeping the autograd graph through the purifier's computation.

        The default is ``forward`` itself, which is right for purifiers built from differentiable ops.
        Purifiers that run an inner optimisation override this to unroll it.
        """
        return self.forward(x)


class Identity(Purifier):
    """The purifier of the ``none`` defense."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _StraightThrough(torch.autograd.Function):
    """Forward: the purifier's output. Backward: the identity (BPDA with g(x) = x)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, purified: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return purified

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ARG004
        return grad, None


class BPDA(nn.Module):
    """``classifier(purifier(x))`` in the forward pass, identity through the purifier in the backward pass.

    With ``eot > 1`` the logits are averaged over that many purifier draws, so the gradient an attack sees
    is the expectation over the purifier's randomness (Athalye et al. 2018, EOT).
    """

    def __init__(self, purifier: Purifier, classifier: nn.Module, *, eot: int = 1) -> None:
        super().__init__()
        if eot < 1:
            raise ValueError(f"expected eot >= 1, got {eot}")
        self.purifier, self.classifier, self.eot = purifier, classifier, eot

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = []
        for _ in range(self.eot):
            with torch.no_grad():
                purified = self.purifier(x.detach())
            logits.append(self.classifier(_StraightThrough.apply(x, purified)))
        return torch.stack(logits).mean(0)


class Purified(nn.Module):
    """``classifier(purifier(x))``; with ``unrolled=True`` gradients flow through the purifier's computation."""

    def __init__(self, purifier: Purifier, classifier: nn.Module, *, unrolled: bool = False) -> None:
        super().__init__()
        self.purifier, self.classifier, self.unrolled = purifier, classifier, unrolled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        purified = self.purifier.unrolled(x) if self.unrolled else self.purifier(x)
        return self.classifier(purified)


@dataclass
class DefenseParts:
    """What a registered defense factory returns: the purifier and the classifier to evaluate."""

    purifier: Purifier
    classifier: nn.Module
    notes: dict[str, Any] = field(default_factory=dict)  # stored in the record (e.g. generator provenance)


@dataclass
class DefenseContext:
    """What a defense factory may use; built by the harness for one cell.

    ``train_classifier(*, transform=None, transform_key=None, adv_eps=0.0, train_images=None)`` trains (or
    loads from the content-keyed cache) a classifier of the cell's architecture on ``transform(x)``, x the
    first ``train_images`` training images (default: the cell's train config) — Defense-GAN-Rec and
    adversarial training use it.
    """

    dataset: str
    model: str
    classifier: nn.Module
    device: torch.device
    seed: int
    profile: dict[str, Any]
    cache_dir: Any
    train_classifier: Callable[..., nn.Module]
    load_split: Callable[[str], Any]
