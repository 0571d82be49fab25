"""The object :func:`bench.data.load` returns. No torch import here, so ``bench.data`` stays cheap."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, repr=False)
class Split:
    """One split of a dataset, in the model contract's layout.

    ``x``: float32 (N, 1, 28, 28), values ``k / 255`` for uint8 pixels ``k``, so in [0, 1].
    ``y``: int64 (N,), class indices in [0, num_classes).
    ``sha256``: :func:`bench.data.cache.digest` of this split's uint8 images and labels, for provenance.
    The tensors are fresh for each :func:`bench.data.load` call, so callers may modify them.
    """

    name: str
    split: str
    x: "torch.Tensor"
    y: "torch.Tensor"
    sha256: str

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return (f"Split(name={self.name!r}, split={self.split!r}, x={tuple(self.x.shape)}, "
                f"y={tuple(self.y.shape)}, sha256={self.sha256[:12]}…)")
