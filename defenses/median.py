"""A k×k median filter purifier — the plug-in example of the README, kept as a built-in baseline."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from defenses.base import DefenseContext, DefenseParts, Purifier


class MedianFilter(Purifier):
    """Per-channel k×k median with reflect padding; (N, C, H, W) in [0, 1] → same shape in [0, 1]."""

    def __init__(self, *, size: int = 3) -> None:
        super().__init__()
        if size < 1 or size % 2 == 0:
            raise ValueError(f"expected an odd size >= 1, got {size}")
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.size // 2
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad else x
        patches = padded.unfold(2, self.size, 1).unfold(3, self.size, 1)
        return patches.flatten(-2).median(dim=-1).values

    def extra_repr(self) -> str:
        return f"size={self.size}"


def build(ctx: DefenseContext, *, size: int = 3) -> DefenseParts:
    return DefenseParts(purifier=MedianFilter(size=size), classifier=ctx.classifier)
