"""Running a foolbox attack under our contract (imported only by adapters, when they run)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


def load() -> Any:
    """``import foolbox``, which needs ``GIT_PYTHON_REFRESH=quiet`` on machines without a git binary."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import foolbox

    return foolbox


def run(attack: Any, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, *,
        epsilon: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a configured foolbox attack on x (N, C, H, W) in [0, 1].

    Returns ``(x_adv, success)``: x_adv (N, C, H, W) projected by foolbox onto the ε-ball (unprojected when
    ``epsilon`` is None), success (N,) bool by foolbox's own criterion.
    """
    fb = load()
    fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
    if target is None:
        criterion = fb.criteria.Misclassification(y)
    else:
        criterion = fb.criteria.TargetedMisclassification(target)
    _, clipped, success = attack(fmodel, x, criterion, epsilons=epsilon)
    return clipped, success
