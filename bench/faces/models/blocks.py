"""Conv building blocks shared by the face models, scaled down from DR-GAN's CASIA-Net for 64×64 on a CPU.

DR-GAN (reference/faces.md §1.2) uses 3×3 convolutions with BN + ELU after every one, an encoder that halves
the resolution down to 6×6 (96² input) and average-pools to the identity feature, and a decoder that mirrors
it from an FC layer. Here the same pattern is parameterised by ``width`` and the image size:

    Trunk (image_size S, width w), k = log2(S/4) stride-2 convs, widths c_i = w*2^i (capped at 8w):
        [0,1] -> 2x-1 -> conv(3->w, s2) -> for i=1..k-1: conv(c->c_i, s2), conv(c_i->c_i)
        -> conv(c->out_dim) at 4x4 -> global average pool  =>  (N, out_dim)
    Decoder (in_dim, S, w), the mirror image:
        (N, in_dim) -> FC -> (N, c_{k-1}, 4, 4) -> for i=k-2..0: nearest x2 upsample, conv(c->c_i)
        -> nearest x2 upsample, conv(w->3) -> tanh -> (t+1)/2  =>  (N, 3, S, S) in [0, 1]

Images are float NCHW in [0, 1]; the ``2x - 1`` mapping to DR-GAN's [-1, 1] happens inside the trunk.
Scaling notes (recorded in every model's ``info``): one stride-2 + one stride-1 conv per stage instead of
DR-GAN's two/three convs; nearest-upsample + conv instead of transposed convs (no checkerboard artefacts).
"""
from __future__ import annotations

import math

from torch import Tensor, nn

SCALING_NOTES = (
    "64x64 input (paper 96x96): 4 stride-2 convs down to 4x4 before average pooling (paper 6x6)",
    "first conv has stride 2 and each later stage is one stride-2 + one stride-1 3x3 conv (paper: 2-3 convs per"
    " stage at full resolution first), widths w*2^i capped at 8w (paper: gf_dim=32 -> 32..320)",
    "decoder: nearest x2 upsample + 3x3 conv per stage (paper: transposed convs)",
    "images in [0,1]; mapped to [-1,1] inside the networks, generator output (tanh+1)/2",
)


def conv_block(c_in: int, c_out: int, *, stride: int = 1, norm: bool = True) -> nn.Sequential:
    """3×3 conv (+ BN) + ELU; ``stride=2`` halves H and W."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ELU(inplace=True))
    return nn.Sequential(*layers)


def num_stages(image_size: int) -> int:
    """Stride-2 stages from ``image_size`` down to 4×4; ``image_size`` must be 4·2^k with k ≥ 1."""
    k = math.log2(image_size / 4) if image_size > 0 else -1
    if k < 1 or k != int(k):
        raise ValueError(f"expected image_size = 4 * 2^k (8, 16, 32, 64, 128 ...), got {image_size}")
    return int(k)


def stage_widths(width: int, stages: int) -> list[int]:
    """Channel widths after each stride-2 conv: w, 2w, 4w, ... capped at 8w."""
    return [min(width * 2 ** i, 8 * width) for i in range(stages)]


class Trunk(nn.Module):
    """Encoder / discriminator trunk: (N, 3, S, S) in [0, 1] -> (N, out_dim) (average-pooled last conv map)."""

    def __init__(self, *, image_size: int, width: int, out_dim: int, norm: bool = True) -> None:
        super().__init__()
        widths = stage_widths(width, num_stages(image_size))
        layers = [conv_block(3, widths[0], stride=2, norm=norm)]
        for c, c_next in zip(widths, widths[1:]):
            layers += [conv_block(c, c_next, stride=2, norm=norm), conv_block(c_next, c_next, norm=norm)]
        layers.append(conv_block(widths[-1], out_dim, norm=norm))
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.body(x * 2.0 - 1.0)).flatten(1)


class Decoder(nn.Module):
    """Generator decoder: (N, in_dim) -> (N, 3, S, S) images in [0, 1]."""

    def __init__(self, *, in_dim: int, image_size: int, width: int) -> None:
        super().__init__()
        widths = stage_widths(width, num_stages(image_size))[::-1]   # c_{k-1} ... w
        self.top = widths[0]
        self.fc = nn.Sequential(nn.Linear(in_dim, self.top * 16, bias=False), nn.BatchNorm1d(self.top * 16),
                                nn.ELU(inplace=True))
        layers: list[nn.Module] = []
        for c, c_next in zip(widths, widths[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), conv_block(c, c_next)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(widths[-1], 3, 3, padding=1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        out = self.body(self.fc(h).view(h.shape[0], self.top, 4, 4))
        return (out + 1.0) * 0.5


def init_weights(module: nn.Module) -> None:
    """DCGAN / DR-GAN init: conv and linear weights N(0, 0.02), biases 0, BN weight N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
