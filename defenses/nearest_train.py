"""The registered ``nearest-train`` defense: replace each input by its nearest training image (L2).

A diagnostic beside Defense-GAN, not a defense from the papers. Defense-GAN projects an input onto the range
of a generator trained on the training set; this projects it onto the training images themselves, the range
an ideal generator would cover at the data points (with nothing in between). Its accuracy under an
oblivious attack separates what the method can do from what a given generator's range allows: if the
nearest training image recovers the label where Defense-GAN's projection does not, the generator's range
is what fails (``docs/defensegan.md``).

The distance is the per-pixel mean squared error, as Defense-GAN's projection loss, and is stored per sample
as ``rec_mse`` so the detection ROC applies unchanged. The search is exact: one matrix product per chunk of
training images, then the chosen image's error recomputed directly (no cancellation error in ``rec_mse``).
The map is piecewise constant, so its true derivative is zero almost everywhere: ``unrolled`` returns that
(a zero gradient). BPDA's identity backward is a poor stand-in for such a map (the output only changes when
the input crosses into another training image's cell), so the specs run this column under oblivious attacks
only: it is a measure of the range, not a claim of robustness.
"""
from __future__ import annotations

import torch

from bench.errors import BenchError
from defenses.base import DefenseContext, DefenseParts, Diagnostics, Purifier


class NearestTrain(Purifier):
    """``x (N, C, H, W) in [0, 1] -> the training image nearest to each x`` by mean squared error."""

    def __init__(self, images: torch.Tensor, *, chunk: int = 8192) -> None:
        super().__init__()
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(f"expected training images of shape (M, C, H, W) with M >= 1, got {tuple(images.shape)}")
        flat = images.detach().to(torch.float32).flatten(1).contiguous()
        self.register_buffer("bank", flat, persistent=False)
        self.register_buffer("bank_sq", (flat * flat).sum(1), persistent=False)
        self.shape, self.chunk = tuple(images.shape[1:]), chunk

    def extra_repr(self) -> str:
        return f"images={len(self.bank)}, shape={self.shape}"

    @torch.no_grad()
    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index (N,) of the nearest training image of each input (the first one on a tie)."""
        q = x.detach().to(self.bank).flatten(1)
        best_d = torch.full((len(q),), float("inf"), device=q.device)
        best_i = torch.zeros(len(q), dtype=torch.long, device=q.device)
        for s in range(0, len(self.bank), self.chunk):
            # ‖q − b‖² up to the constant ‖q‖², which does not change the argmin
            d = self.bank_sq[s:s + self.chunk][None] - 2.0 * q @ self.bank[s:s + self.chunk].T
            d_min, i_min = d.min(1)
            better = d_min < best_d
            best_d, best_i = torch.where(better, d_min, best_d), torch.where(better, i_min + s, best_i)
        return best_i

    @torch.no_grad()
    def purify(self, x: torch.Tensor) -> tuple[torch.Tensor, Diagnostics]:
        out = self.bank[self.nearest(x)].view(len(x), *self.shape).to(x)
        return out, {"rec_mse": ((out - x) ** 2).flatten(1).mean(1)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.purify(x)[0]

    def unrolled(self, x: torch.Tensor) -> torch.Tensor:
        """The map's own derivative: zero almost everywhere (``x * 0`` keeps the input in the graph)."""
        return self.forward(x) + 0.0 * x


def build(ctx: DefenseContext, *, train_images: int | None = None) -> DefenseParts:
    """Nearest-neighbour projection onto the first ``train_images`` training images (default: all of them)."""
    if train_images is not None and (not isinstance(train_images, int) or train_images < 1):
        raise BenchError(f"invalid nearest-train train_images: {train_images!r}; expected an integer >= 1")
    split = ctx.load_split("train")
    images = torch.as_tensor(split.x, dtype=torch.float32)[:train_images].to(ctx.device)
    notes = {"train_images": len(images), "train_sha256": getattr(split, "sha256", None)}
    return DefenseParts(purifier=NearestTrain(images), classifier=ctx.classifier, notes=notes)
