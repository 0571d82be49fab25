"""Running a torchattacks attack object under our contract (imported only by adapters, when they run)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def run(atk, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Run a configured ``torchattacks.Attack`` on x (N, C, H, W) in [0, 1].

    torchattacks infers its device from the model's first parameter; we use the input's instead so that a
    parameter-free wrapper works too. Targeted mode uses the given labels as targets. torchattacks puts the
    model in eval mode for the attack; ``Attack.__call__`` restores every module's flag afterwards.
    """
    atk.set_device(x.device)
    if target is None:
        return atk(x, y)
    atk.set_mode_targeted_by_label(quiet=True)
    return atk(x, target)
