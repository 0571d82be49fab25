"""A face feature extractor plus an enrolled gallery, seen as a classifier over gallery entries.

``GalleryHead(f, gallery_x, gallery_ids)(x)`` returns logits (N, G) = scale · cos(f(x), f(gallery)), so the
classifier attacks apply unchanged: an untargeted attack on the probe's own gallery index is *dodging*, a
targeted attack towards another identity's index is *impersonation*.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def pair_scores(features_probe: torch.Tensor, features_gallery: torch.Tensor) -> torch.Tensor:
    """Cosine similarity matrix (P, G) in [−1, 1] of features (P, D) and (G, D); normalises both."""
    return F.normalize(features_probe.flatten(1), dim=1) @ F.normalize(features_gallery.flatten(1), dim=1).T


class GalleryHead(nn.Module):
    """Logits over gallery entries from cosine similarity of L2-normalised features.

    Args:
        feature_extractor: module mapping images (N, C, H, W) in [0, 1] to features (N, D) (or (N, …),
            flattened). Its parameters are frozen by the caller's choice; this module only wraps it.
        gallery_x: (G, C, H, W) float in [0, 1], one or more images per enrolled identity.
        gallery_ids: (G,) int identity of each gallery image (kept as buffer ``gallery_ids``).
        scale: logit = scale · cosine; 1 keeps logits in [−1, 1], larger values give sharper softmax
            probabilities (the argmax, and so rank-1, does not depend on it). Must be > 0.
        batch_size: images per forward pass when computing the gallery templates.

    Forward: x (N, C, H, W) in [0, 1] → logits (N, G) float32. Templates are computed once, at construction
    (in eval mode, without gradient), and stored as the buffer ``templates`` (G, D), unit norm.
    """

    def __init__(self, feature_extractor: nn.Module, gallery_x: torch.Tensor, gallery_ids: Any, *,
                 scale: float = 10.0, batch_size: int = 256) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"expected scale > 0, got {scale}")
        self.features = feature_extractor
        self.scale = float(scale)
        ids = torch.as_tensor(gallery_ids, dtype=torch.int64)
        if ids.shape != (gallery_x.shape[0],):
            raise ValueError(f"gallery_ids must have shape ({gallery_x.shape[0]},), got {tuple(ids.shape)}")
        was_training = feature_extractor.training
        feature_extractor.eval()
        with torch.no_grad():
            feats = torch.cat([feature_extractor(chunk).flatten(1) for chunk in gallery_x.split(batch_size)])
        feature_extractor.train(was_training)
        self.register_buffer("templates", F.normalize(feats.float(), dim=1))
        self.register_buffer("gallery_ids", ids)

    @property
    def num_classes(self) -> int:
        """Number of gallery entries G (the logit dimension)."""
        return int(self.templates.shape[0])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm features (N, D) of images (N, C, H, W) in [0, 1]."""
        return F.normalize(self.features(x).flatten(1), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.embed(x) @ self.templates.T

    def index_of(self, subject: Any) -> torch.Tensor:
        """Gallery index (N,) of the first entry of each identity in ``subject`` (N,); −1 if not enrolled."""
        subject = torch.as_tensor(subject, dtype=torch.int64).view(-1, 1)
        match = subject == self.gallery_ids.view(1, -1)
        first = match.float().argmax(1)
        return torch.where(match.any(1), first, torch.full_like(first, -1))

    def extra_repr(self) -> str:
        return f"gallery={self.num_classes}, scale={self.scale}"
