"""Raw pixels as the floor: the feature is the flattened image minus the training-set mean image
(so cosine similarity is a correlation of deviations from the average face). No training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.faces.models.training import FaceModel, freeze, resolve_config

CONFIGS: dict[str, dict[str, Any]] = {p: {"mean_centre": True} for p in ("smoke", "quick", "paper")}


class Pixels(nn.Module):
    """(N, 3, H, W) in [0, 1] -> (N, 3·H·W): flattened pixels minus the mean training image (if centred)."""

    def __init__(self, mean: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.flatten().clone())

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1) - self.mean


def build(trainset: Any, *, config: dict | None = None, cache_dir: Path | None = None, device: Any = "cpu",
          seed: int = 0, progress: bool = True) -> FaceModel:
    """Pixel features; ``config={"mean_centre": False}`` gives the raw flattened image."""
    cfg = resolve_config("pixels", CONFIGS["quick"], config)
    x = trainset.x
    mean = x.mean(0) if cfg["mean_centre"] else torch.zeros(x.shape[1:])
    features = freeze(Pixels(mean).to(torch.device(device)))
    return FaceModel(features=features, generator=None,
                     info={"model": "pixels", "config": cfg, "trained": False, "iterations": 0,
                           "params": {"features": 0}, "feature": "flattened pixels" + (" minus the training mean"
                                                                                      if cfg["mean_centre"] else "")})
