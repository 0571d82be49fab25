"""The threat model, enforced by the harness after every attack (not trusted to the library).

``enforce(x, x_adv, norm=..., eps=...)`` accepts float round-off (``TOLERANCE``) and projects it away,
so stored adversarial inputs are exactly inside the ε-ball and [0, 1]; anything further out means the
backend broke the threat model and is an error, never a silent clip-and-go.
"""
from __future__ import annotations

import torch

from bench.errors import ThreatModelError

TOLERANCE = 1e-5


def norms(x: torch.Tensor, x_adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (L∞, L2) norms of ``x_adv - x``; each of shape (N,)."""
    delta = (x_adv - x).flatten(1)
    return delta.abs().amax(1) if delta.shape[1] else delta.sum(1), delta.norm(dim=1)


def enforce(x: torch.Tensor, x_adv: torch.Tensor, *, norm: str, eps: float | None, who: str) -> torch.Tensor:
    """Check ``x_adv`` against [0, 1] and the ``norm`` ball of radius ``eps`` around ``x``; return it projected.

    Raises :class:`ThreatModelError` naming ``who`` when a point lies outside by more than ``TOLERANCE``.
    """
    if x_adv.shape != x.shape:
        raise ThreatModelError(f"{who}: returned shape {tuple(x_adv.shape)}, expected {tuple(x.shape)}")
    if not torch.isfinite(x_adv).all():
        raise ThreatModelError(f"{who}: returned non-finite values")
    low, high = float(x_adv.min()), float(x_adv.max())
    if low < -TOLERANCE or high > 1 + TOLERANCE:
        raise ThreatModelError(f"{who}: returned pixels outside [0, 1] (min {low:.6g}, max {high:.6g})")
    x_adv = x_adv.clamp(0, 1)
    if eps is None:
        return x_adv
    linf, l2 = norms(x, x_adv)
    size = linf if norm == "linf" else l2
    worst = float(size.max()) if size.numel() else 0.0
    if worst > eps + TOLERANCE:
        raise ThreatModelError(f"{who}: returned a perturbation of {norm} norm {worst:.6g} > eps = {eps:g}")
    if norm == "linf":
        return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0, 1)
    scale = (eps / l2.clamp_min(1e-12)).clamp(max=1.0).view(-1, *([1] * (x.dim() - 1)))
    return (x + (x_adv - x) * scale).clamp(0, 1)
