"""MagNet's MNIST autoencoders (Meng & Chen, CCS 2017) and their cached training.

Architectures as in the authors' code (``Trevillie/MagNet`` ``defensive_models.py`` / ``train_defense.py``;
3×3 convolutions, ``same`` padding, sigmoid everywhere, Keras' Glorot-uniform init and zero biases):

* ``"I"``  (structure ``[3, "average", 3]``): Conv3 · AvgPool2 · Conv3 · Conv3 · Upsample2 · Conv3 · Conv1.
  The reformer, and the L2 reconstruction-error detector.
* ``"II"`` (structure ``[3]``): Conv3 · Conv3 · Conv1. The L1 reconstruction-error detector.

Training (``DenoisingAutoEncoder.train``): Adam (lr 1e-3), batch 256, MSE between the clean image and the
autoencoder's output on the image plus Gaussian noise (std 0.1, clipped to [0, 1]; drawn **once** before
training, as MagNet does), plus Keras' ``activity_regularizer=l2(1e-9)`` on every conv layer's output
(Keras 2.0 semantics: 1e-9 · Σ over the batch and units of squared activations, not weight decay).
MagNet trains for 100 epochs on MNIST train[5000:]; here the epochs and number of images come from the
caller (the profile), and the images from the harness's train split.
"""
from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.cache import atomic_write_bytes, atomic_write_text, content_key, sha256_file
from bench.progress import progress

log = logging.getLogger(__name__)

STRUCTURES: dict[str, tuple[int | str, ...]] = {"I": (3, "average", 3), "II": (3,)}


class MagNetAutoencoder(nn.Module):
    """A MagNet denoising autoencoder: (N, C, H, W) in [0, 1] → (N, C, H, W) in (0, 1); H, W even if pooled."""

    def __init__(self, structure: tuple[int | str, ...], *, channels: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = channels
        for item in structure:  # encoder
            if isinstance(item, int):
                layers += [nn.Conv2d(width, item, 3, padding=1), nn.Sigmoid()]
                width = item
            elif item == "average":
                layers.append(nn.AvgPool2d(2))
            else:
                raise ValueError(f"expected an int or 'average' in the structure, got {item!r}")
        for item in reversed(structure):  # decoder: the mirror image, pooling becomes nearest upsampling
            if isinstance(item, int):
                layers += [nn.Conv2d(width, item, 3, padding=1), nn.Sigmoid()]
                width = item
            else:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers += [nn.Conv2d(width, channels, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)
        for module in self.net:
            if isinstance(module, nn.Conv2d):  # Keras defaults
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_with_activity(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, Σ of squared sigmoid activations over the batch and all conv layers)."""
        activity = x.new_zeros(())
        for module in self.net:
            x = module(x)
            if isinstance(module, nn.Sigmoid):
                activity = activity + x.square().sum()
        return x, activity


@dataclass(frozen=True)
class AETrainConfig:
    """How one autoencoder is trained; ``train_images`` None: the whole train split."""

    arch: str = "I"
    epochs: int = 100
    train_images: int | None = None
    batch_size: int = 256
    lr: float = 1e-3
    noise: float = 0.1
    activity_l2: float = 1e-9


def _fit(model: MagNetAutoencoder, x: torch.Tensor, config: AETrainConfig, *, seed: int,
         device: torch.device) -> dict[str, float]:
    generator = torch.Generator().manual_seed(seed)
    noisy = (x + config.noise * torch.randn(x.shape, generator=generator)).clamp_(0, 1)
    # channels_last: oneDNN's 3-channel convolution backward is ~2.5x faster in it on CPU (measured)
    cl = torch.channels_last
    model.to(device, memory_format=cl).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps = (len(x) + config.batch_size - 1) // config.batch_size
    loss_value = float("nan")
    with progress(total=config.epochs * steps, desc=f"train MagNet AE {config.arch}", unit="batch") as bar:
        for _ in range(config.epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), config.batch_size):
                idx = order[start:start + config.batch_size]
                out, activity = model.forward_with_activity(noisy[idx].to(device).contiguous(memory_format=cl))
                mse = F.mse_loss(out, x[idx].to(device))
                loss = mse + config.activity_l2 * activity
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_value = float(mse.detach())
                bar.update(1)
            bar.set_postfix(mse=f"{loss_value:.5f}")
    model.to(memory_format=torch.contiguous_format).eval()
    return {"final_train_mse": loss_value}


@torch.no_grad()
def reconstruction_mse(model: nn.Module, x: torch.Tensor, *, device: torch.device, batch: int = 1000) -> float:
    """Mean squared reconstruction error of ``model`` over ``x`` (N, C, H, W)."""
    total = sum(float((model(x[i:i + batch].to(device)) - x[i:i + batch].to(device)).square().sum())
                for i in range(0, len(x), batch))
    return total / max(1, x.numel())


def load_or_train(config: AETrainConfig, *, train: Any, val: Any, dataset: str, seed: int, cache_dir: Path,
                  device: torch.device) -> tuple[MagNetAutoencoder, dict[str, Any]]:
    """(frozen autoencoder in eval mode, metadata): from ``cache_dir``/magnet when its SHA-256 checks, else trained.

    ``train`` / ``val`` are splits with ``.x`` float (N, 1, 28, 28) in [0, 1] and ``.sha256``. The content key
    covers the architecture, the training config, the training data's checksum and the seed.
    """
    key = content_key({"defense": "magnet-ae", "structure": STRUCTURES[config.arch], "config": asdict(config),
                       "dataset": dataset, "data_sha256": train.sha256, "seed": seed, "format": 1})
    path = Path(cache_dir) / "magnet" / f"{dataset}-AE{config.arch}-{key[:16]}.pt"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if sha256_file(path) == meta.get("sha256"):
            model = _seeded_model(config.arch, int(train.x.shape[1]), seed=seed)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            log.info("loaded cached MagNet autoencoder %s (%s)", config.arch, path)
            return _frozen(model, device), {**meta, "source": "cache"}
        log.warning("checkpoint %s does not match its recorded SHA-256; retraining", path)
    x = train.x if config.train_images is None else train.x[:config.train_images]
    started = time.perf_counter()
    model = _seeded_model(config.arch, int(train.x.shape[1]), seed=seed)
    stats = _fit(model, x, config, seed=seed, device=device)
    stats.update(train_seconds=time.perf_counter() - started,
                 val_mse=reconstruction_mse(model, val.x, device=device))
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    meta = {"sha256": sha256_file(path), "key": key, "config": asdict(config), "dataset": dataset, "seed": seed,
            "data_sha256": train.sha256, "images": len(x), **stats}
    atomic_write_text(meta_path, json.dumps(meta, indent=2))
    log.info("trained MagNet autoencoder %s on %d images: val MSE %.5f in %.0f s", config.arch, len(x),
             stats["val_mse"], stats["train_seconds"])
    return _frozen(model, device), {**meta, "source": "trained"}


def _seeded_model(arch: str, channels: int, *, seed: int) -> MagNetAutoencoder:
    """A fresh autoencoder initialised from ``seed`` without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MagNetAutoencoder(STRUCTURES[arch], channels=channels)


def _frozen(model: MagNetAutoencoder, device: torch.device) -> MagNetAutoencoder:
    model.requires_grad_(False)
    return model.to(device).eval()
