"""A plain identity classifier, the baseline: the DR-GAN encoder trunk + a linear softmax over the training
identities, trained with cross-entropy on all poses. Its penultimate layer (the pooled trunk output) is the
identity feature. No GAN, no pose labels: pose invariance comes only from seeing every identity at every pose.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from bench.faces.models.blocks import SCALING_NOTES, Trunk, init_weights
from bench.faces.models.training import FaceModel, LossLog, cached_build, freeze, resolve_config

log = logging.getLogger(__name__)
ARCH = "softmax-cnn-64-v1"

CONFIGS: dict[str, dict[str, Any]] = {
    "smoke": dict(iterations=5, batch_size=8, width=4, feat_dim=16, lr=1e-3, weight_decay=5e-4),
    "quick": dict(iterations=1500, batch_size=32, width=16, feat_dim=128, lr=1e-3, weight_decay=5e-4),
    "paper": dict(iterations=20000, batch_size=64, width=32, feat_dim=320, lr=1e-3, weight_decay=5e-4),
}


class SoftmaxCNN(nn.Module):
    """(N, 3, S, S) in [0, 1] -> identity logits (N, num_ids); ``trunk`` gives the (N, feat_dim) feature."""

    def __init__(self, *, image_size: int, width: int, feat_dim: int, num_ids: int) -> None:
        super().__init__()
        self.trunk = Trunk(image_size=image_size, width=width, out_dim=feat_dim)
        self.head = nn.Linear(feat_dim, num_ids)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


class Penultimate(nn.Module):
    """The identity feature: (N, 3, S, S) in [0, 1] -> (N, feat_dim)."""

    def __init__(self, net: SoftmaxCNN) -> None:
        super().__init__()
        self.trunk = net.trunk

    def forward(self, x: Tensor) -> Tensor:
        return self.trunk(x)


def _train(net: SoftmaxCNN, trainset: Any, cfg: dict, *, device: torch.device, seed: int,
           progress: bool) -> dict[str, Any]:
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["iterations"])
    rng = torch.Generator().manual_seed(seed)
    losses = LossLog(every=max(1, cfg["iterations"] // 20))
    bar = tqdm(range(cfg["iterations"]), desc="softmax-cnn", disable=not progress, leave=False)
    for it in bar:
        idx = torch.randint(trainset.x.shape[0], (cfg["batch_size"],), generator=rng)
        x, y = trainset.x[idx].to(device), trainset.subject[idx].to(device)
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        means = losses.add(it, ce=loss.item(), acc=(logits.argmax(1) == y).float().mean().item())
        if progress and it % 10 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
    return {"iterations": cfg["iterations"], "losses": losses.history}


def build(trainset: Any, *, config: dict | None = None, cache_dir: Path, device: Any = "cpu", seed: int = 0,
          progress: bool = True) -> FaceModel:
    """Train (or load from ``cache_dir``) the classifier; features = penultimate layer (N, feat_dim)."""
    cfg = resolve_config("softmax-cnn", CONFIGS["quick"], config)
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SoftmaxCNN(image_size=int(trainset.x.shape[-1]), width=cfg["width"], feat_dim=cfg["feat_dim"],
                         num_ids=int(trainset.subject.max()) + 1)
        init_weights(net)
    info, path = cached_build(
        model_key="softmax-cnn", arch=ARCH, trainset=trainset, config=cfg, seed=seed, cache_dir=cache_dir,
        modules={"net": net}, train=lambda: _train(net, trainset, cfg, device=device, seed=seed, progress=progress))
    net.to(device)
    info.update(checkpoint=str(path), feature="penultimate layer (average-pooled trunk output)",
                params={"trunk": sum(p.numel() for p in net.trunk.parameters()),
                        "head": sum(p.numel() for p in net.head.parameters())},
                deviations=[*SCALING_NOTES, "Adam 1e-3 with cosine decay, weight decay 5e-4, no augmentation"])
    freeze(net)
    return FaceModel(features=freeze(Penultimate(net)), generator=None, info=info)
