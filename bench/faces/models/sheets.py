"""Sample sheets for the face GANs: each input face re-rendered at every yaw of the 13-pose grid.

The library returns a matplotlib ``Figure``; the CLI decides where to save it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

from bench.faces.models.training import YAWS, FaceModel

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@torch.no_grad()
def rotations(model: FaceModel, x: Tensor, *, yaws: Sequence[int] = YAWS) -> Tensor:
    """(M, 3, H, W) in [0, 1] -> (M, len(yaws), 3, H, W) in [0, 1]: each input rendered at every yaw."""
    if model.generator is None:
        raise ValueError(f"model {model.info.get('model')!r} has no generator to re-render faces")
    device = next((t.device for t in model.generator.buffers()), torch.device("cpu"))
    x = x.to(device)
    return torch.stack([model.generator(x, int(yaw)).cpu() for yaw in yaws], dim=1)


def pose_sheet(model: FaceModel, x: Tensor, *, input_yaws: Sequence[int] | None = None,
               yaws: Sequence[int] = YAWS, title: str | None = None) -> "Figure":
    """A grid: one row per input (first column the input, then its rendering at each yaw).

    ``x``: (M, 3, H, W) in [0, 1], typically test identities at a non-frontal yaw (frontalisation is the 0°
    column, novel views the others). ``input_yaws`` labels the input column when given.
    """
    from matplotlib.figure import Figure

    out = rotations(model, x, yaws=yaws)
    rows, cols = out.shape[0], len(yaws) + 1
    fig = Figure(figsize=(0.9 * cols, 0.95 * rows + 0.5))
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        images = [x[r].cpu(), *out[r]]
        for c, img in enumerate(images):
            ax = axes[r][c]
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("input" if c == 0 else f"{yaws[c - 1]}°", fontsize=7)
            if c == 0 and input_yaws is not None:
                ax.set_ylabel(f"{int(input_yaws[r])}°", fontsize=7)
    fig.suptitle(title or f"{model.info.get('model', 'model')}: input and re-rendered views", fontsize=9)
    fig.subplots_adjust(left=0.03, right=0.99, top=0.9 if rows > 2 else 0.8, bottom=0.01, wspace=0.05,
                        hspace=0.05)
    return fig
