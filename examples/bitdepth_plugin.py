"""A new defense in one file: bit-depth reduction (Xu et al., "Feature Squeezing", NDSS 2018).

    bench run examples/bitdepth.toml --plugin examples/bitdepth_plugin.py
"""
import torch

from bench.registry import DEFENSES
from defenses.base import DefenseContext, DefenseParts, Purifier


class BitDepth(Purifier):
    """Quantise (N, C, H, W) images in [0, 1] to ``bits`` bits per pixel."""

    def __init__(self, *, bits: int = 1) -> None:
        super().__init__()
        self.levels = 2 ** bits - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * self.levels) / self.levels


@DEFENSES.register("bit-depth")
def build(ctx: DefenseContext, *, bits: int = 1) -> DefenseParts:
    return DefenseParts(purifier=BitDepth(bits=bits), classifier=ctx.classifier)
