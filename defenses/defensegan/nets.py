"""Generator and critic of the released Defense-GAN code (``models/dataset_models.py``), in PyTorch NCHW.

Generator (latent 128, no batch norm)::

    z (N, 128) -> Linear(128 -> 4096) -> ReLU -> (N, 256, 4, 4)
    -> ConvT(256 -> 128, 5x5, s2) -> (N, 128, 8, 8) -> ReLU -> crop to 7x7
    -> ConvT(128 -> 64, 5x5, s2)  -> (N, 64, 14, 14) -> ReLU
    -> ConvT(64 -> 1, 5x5, s2)    -> (N, 1, 28, 28) -> Sigmoid        (output in [0, 1])

Critic (no batch norm, LeakyReLU 0.2)::

    x (N, 1, 28, 28) -> Conv(1 -> 64, 5x5, s2) 14x14 -> Conv(64 -> 128) 7x7 -> Conv(128 -> 256) 4x4
    -> flatten 4096 -> Linear(4096 -> 1)

Initialisation follows tflib (Gulrajani's WGAN-GP code, which the release uses): convolutions "He"
uniform with std sqrt(4 / (fan_in + fan_out)), linear layers Glorot uniform, biases zero. The TF
reshape is NHWC; here it is NCHW, which only permutes the first layer's output units.
"""
from __future__ import annotations

import math

import torch
from torch import nn

ARCH = "defensegan-mnist-wgan-gp-v1"
LATENT_DIM = 128
DIM = 64


def _uniform_(weight: torch.Tensor, std: float) -> None:
    bound = std * math.sqrt(3.0)
    with torch.no_grad():
        weight.uniform_(-bound, bound)


def _tflib_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            _uniform_(m.weight, math.sqrt(2.0 / (m.in_features + m.out_features)))
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            k, s = m.kernel_size[0], m.stride[0]
            if isinstance(m, nn.Conv2d):
                fan_in, fan_out = m.in_channels * k * k, m.out_channels * k * k / s**2
            else:
                fan_in, fan_out = m.in_channels * k * k / s**2, m.out_channels * k * k
            _uniform_(m.weight, math.sqrt(4.0 / (fan_in + fan_out)))
        else:
            continue
        nn.init.zeros_(m.bias)


def _deconv(c_in: int, c_out: int, *, crop: bool = False) -> nn.ConvTranspose2d:
    # kernel 5, stride 2, "SAME": output = 2 x input. output_padding only appends the last row and
    # column, so output_padding=0 computes exactly the released "8x8 then crop to [:7, :7]", without
    # the wasted row/column or the copy of a non-contiguous crop.
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=0 if crop else 1)


class Generator(nn.Module):
    """``G(z)``: latents (N, latent_dim) -> images (N, 1, 28, 28) in [0, 1]."""

    def __init__(self, *, latent_dim: int = LATENT_DIM, dim: int = DIM) -> None:
        super().__init__()
        self.latent_dim, self.dim = latent_dim, dim
        self.fc = nn.Linear(latent_dim, 4 * 4 * 4 * dim)
        self.deconv1 = _deconv(4 * dim, 2 * dim, crop=True)  # 4x4 -> 7x7
        self.deconv2 = _deconv(2 * dim, dim)
        self.deconv3 = _deconv(dim, 1)
        _tflib_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(z)).view(-1, 4 * self.dim, 4, 4)
        h = torch.relu(self.deconv1(h))
        h = torch.relu(self.deconv2(h))
        return torch.sigmoid(self.deconv3(h))

    def macs_per_sample(self) -> int:
        """Multiply-accumulates of one forward pass (used for FLOP counts: forward ≈ 2·MACs)."""
        d = self.dim
        fc = self.latent_dim * 16 * 4 * d
        # a transposed conv does c_in*c_out*k*k MACs per *input* pixel
        dc1 = 4 * 4 * (4 * d) * (2 * d) * 25
        dc2 = 7 * 7 * (2 * d) * d * 25
        dc3 = 14 * 14 * d * 1 * 25
        return fc + dc1 + dc2 + dc3


class Critic(nn.Module):
    """``D(x)``: images (N, 1, 28, 28) in [0, 1] -> unbounded scores (N,)."""

    def __init__(self, *, dim: int = DIM) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, dim, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(dim, 2 * dim, 5, stride=2, padding=2)
        self.conv3 = nn.Conv2d(2 * dim, 4 * dim, 5, stride=2, padding=2)
        self.fc = nn.Linear(4 * 4 * 4 * dim, 1)
        _tflib_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.conv1(x), 0.2)
        h = nn.functional.leaky_relu(self.conv2(h), 0.2)
        h = nn.functional.leaky_relu(self.conv3(h), 0.2)
        return self.fc(h.flatten(1)).squeeze(1)
