"""User models with their own weights: register a factory and a checkpoint, and the harness loads it.

    from bench.models.pretrained import Pretrained
    from bench.registry import MODELS
    MODELS.register("my-net", Pretrained(factory=MyNet, checkpoint="weights/my-net.pt", sha256="…"))

The checkpoint is a ``state_dict`` saved with ``torch.save``; it is loaded with ``weights_only=True`` and, when
``sha256`` is given, verified first. The model must follow the model contract: NCHW floats in [0, 1] in,
logits (N, classes) out, normalisation inside. A pretrained model is never retrained, so defenses that train
their own classifier (adversarial training, Defense-GAN-Rec) refuse it with a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from bench.cache import sha256_file
from bench.errors import BenchError


@dataclass(frozen=True)
class Pretrained:
    """A model factory (called without arguments) plus the path of its trained ``state_dict``."""

    factory: Callable[[], nn.Module]
    checkpoint: str | Path
    sha256: str | None = None

    def load(self, device: torch.device, *, who: str) -> nn.Module:
        path = Path(self.checkpoint).expanduser()
        if not path.is_file():
            raise BenchError(f"model {who}: checkpoint not found: {path}")
        if self.sha256 is not None and sha256_file(path) != self.sha256:
            raise BenchError(f"model {who}: checkpoint {path} does not match its SHA-256 {self.sha256[:12]}…")
        model = self.factory()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (RuntimeError, OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BenchError(f"model {who}: checkpoint {path} does not fit the model ({first})") from None
        model.bench_meta = {"pretrained": str(path), "sha256": sha256_file(path)}
        return model.to(device).eval()
