"""DR-GAN (Tran, Yin, Liu, CVPR 2017), single-image variant, scaled for 64×64 on a CPU (reference/faces.md §1).

Generator = encoder + decoder: f = G_enc(x) ∈ R^feat_dim (the identity feature),
x̂ = G_dec([f, c, z]) with c a one-hot pose code over the 13 yaws and z ~ U(−1, 1)^nz.
Discriminator: a trunk like the encoder with a softmax over N_d + 1 identity classes (index N_d = "fake")
and a softmax over N_p = 13 pose classes (the paper's form, as zhangjunh/DR-GAN-by-pytorch).

Losses (§1.1), per batch with a target pose y^t for each input:
    D: CE_id(D(x), y^d) + CE_pose(D(x), y^p) + CE_id(D(x̂), fake)
    G: CE_id(D(x̂), y^d) + CE_pose(D(x̂), y^t)  [+ rec_weight·L1(x̂, x_t)]  [+ aux_id_weight·CE(W f, y^d)]
Deviations (each one a config key, recorded in ``info["deviations"]``): the target pose is that of a
partner image x_t of the same subject and illumination, and an L1 term to it (zhangjunh adds an L1 term to
the input; Sampson-Lee has ``-use_rec``) stabilises the short CPU training; an auxiliary identity softmax on
f (the official TF code pretrains its encoder as an identity classifier, §1.3) makes f usable within minutes.
Set ``rec_weight=0, aux_id_weight=0`` for the paper's losses only. Adam 2e-4, betas (0.5, 0.999); D and G
alternate every batch. Identity feature = f(x), eval mode.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from bench.faces.models.blocks import SCALING_NOTES, Decoder, Trunk, init_weights
from bench.faces.models.training import (NUM_POSES, FaceModel, LossLog, PairSampler, cached_build, freeze,
                                         pose_index, resolve_config)

log = logging.getLogger(__name__)
ARCH = "drgan-64-v1"

CONFIGS: dict[str, dict[str, Any]] = {
    "smoke": dict(iterations=4, batch_size=8, width=4, feat_dim=16, nz=4, lr=2e-4, beta1=0.5, beta2=0.999,
                  rec_weight=1.0, aux_id_weight=1.0),
    "quick": dict(iterations=1500, batch_size=32, width=12, feat_dim=128, nz=50, lr=2e-4, beta1=0.5, beta2=0.999,
                  rec_weight=1.0, aux_id_weight=1.0),
    "paper": dict(iterations=20000, batch_size=64, width=32, feat_dim=320, nz=50, lr=2e-4, beta1=0.5, beta2=0.999,
                  rec_weight=1.0, aux_id_weight=1.0),
}


class DRGenerator(nn.Module):
    """Encoder-decoder G. ``encode(x)`` (N,3,S,S) in [0,1] -> f (N, feat_dim); ``decode(f, pose, z)`` -> image."""

    def __init__(self, *, image_size: int, width: int, feat_dim: int, nz: int, num_ids: int) -> None:
        super().__init__()
        self.nz = nz
        self.encoder = Trunk(image_size=image_size, width=width, out_dim=feat_dim)
        self.decoder = Decoder(in_dim=feat_dim + NUM_POSES + nz, image_size=image_size, width=width)
        self.aux_id = nn.Linear(feat_dim, num_ids)   # auxiliary identity head (a recorded deviation)

    def decode(self, f: Tensor, pose: Tensor, z: Tensor) -> Tensor:
        code = F.one_hot(pose, NUM_POSES).to(f.dtype)
        return self.decoder(torch.cat([f, code, z], dim=1))


class Encoder(nn.Module):
    """The identity feature extractor f(x): (N, 3, S, S) in [0, 1] -> (N, feat_dim)."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, x: Tensor) -> Tensor:
        return self.trunk(x)


class Rotator(nn.Module):
    """``rotator(x, yaw)``: re-render (N, 3, S, S) in [0, 1] at yaw degrees (int or (N,)); z = 0 (mean of U(−1,1))."""

    def __init__(self, g: DRGenerator) -> None:
        super().__init__()
        self.g = g

    def forward(self, x: Tensor, yaw: Tensor | int) -> Tensor:
        f = self.g.encoder(x)
        pose = pose_index(yaw).to(x.device).expand(x.shape[0])
        return self.g.decode(f, pose, f.new_zeros(x.shape[0], self.g.nz))


class Discriminator(nn.Module):
    """(N, 3, S, S) in [0, 1] -> (identity logits (N, num_ids + 1), pose logits (N, 13))."""

    def __init__(self, *, image_size: int, width: int, feat_dim: int, num_ids: int) -> None:
        super().__init__()
        self.num_ids = num_ids
        self.trunk = Trunk(image_size=image_size, width=width, out_dim=feat_dim)
        self.head = nn.Linear(feat_dim, num_ids + 1 + NUM_POSES)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.head(self.trunk(x))
        return out[:, :self.num_ids + 1], out[:, self.num_ids + 1:]


def _train(g: DRGenerator, d: Discriminator, trainset: Any, cfg: dict, *, device: torch.device, seed: int,
           progress: bool) -> dict[str, Any]:
    g.to(device).train()
    d.to(device).train()
    sampler = PairSampler(trainset.subject, trainset.illum, generator=torch.Generator().manual_seed(seed))
    poses = pose_index(trainset.yaw)
    betas = (cfg["beta1"], cfg["beta2"])
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg["lr"], betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg["lr"], betas=betas)
    fake = d.num_ids
    losses = LossLog(every=max(1, cfg["iterations"] // 20))
    bar = tqdm(range(cfg["iterations"]), desc="drgan", disable=not progress, leave=False)
    for it in bar:
        idx, partner = sampler.sample(cfg["batch_size"])
        x, x_t = trainset.x[idx].to(device), trainset.x[partner].to(device)
        y_id, y_pose, y_t = trainset.subject[idx].to(device), poses[idx].to(device), poses[partner].to(device)
        z = torch.rand(x.shape[0], cfg["nz"], device=device) * 2 - 1
        f = g.encoder(x)
        x_hat = g.decode(f, y_t, z)

        id_real, pose_real = d(x)
        id_fake, _ = d(x_hat.detach())
        loss_d = (F.cross_entropy(id_real, y_id) + F.cross_entropy(pose_real, y_pose)
                  + F.cross_entropy(id_fake, torch.full_like(y_id, fake)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        id_gen, pose_gen = d(x_hat)
        loss_adv = F.cross_entropy(id_gen, y_id) + F.cross_entropy(pose_gen, y_t)
        loss_rec = (x_hat - x_t).abs().mean()
        loss_aux = F.cross_entropy(g.aux_id(f), y_id)
        loss_g = loss_adv + cfg["rec_weight"] * loss_rec + cfg["aux_id_weight"] * loss_aux
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        means = losses.add(it, d=loss_d.item(), g_adv=loss_adv.item(), rec_l1=loss_rec.item(),
                           aux_id=loss_aux.item(),
                           d_id_acc=(id_real.argmax(1) == y_id).float().mean().item())
        if progress and it % 10 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
    return {"iterations": cfg["iterations"], "losses": losses.history}


def build(trainset: Any, *, config: dict | None = None, cache_dir: Path, device: Any = "cpu", seed: int = 0,
          progress: bool = True) -> FaceModel:
    """Train (or load from ``cache_dir``) a DR-GAN on ``trainset``; features = f(x) (N, feat_dim)."""
    cfg = resolve_config("drgan", CONFIGS["quick"], config)
    device = torch.device(device)
    image_size, num_ids = int(trainset.x.shape[-1]), int(trainset.subject.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = DRGenerator(image_size=image_size, width=cfg["width"], feat_dim=cfg["feat_dim"], nz=cfg["nz"],
                        num_ids=num_ids)
        d = Discriminator(image_size=image_size, width=cfg["width"], feat_dim=cfg["feat_dim"], num_ids=num_ids)
        init_weights(g)
        init_weights(d)
    info, path = cached_build(
        model_key="drgan", arch=ARCH, trainset=trainset, config=cfg, seed=seed, cache_dir=cache_dir,
        modules={"generator": g, "discriminator": d},
        train=lambda: _train(g, d, trainset, cfg, device=device, seed=seed, progress=progress))
    g.to(device)
    info.update(checkpoint=str(path), feature="f(x) = G_enc(x), average-pooled last conv map",
                params={"encoder": _count(g.encoder), "decoder": _count(g.decoder), "discriminator": _count(d)},
                deviations=_deviations(cfg))
    freeze(g)
    return FaceModel(features=freeze(Encoder(g.encoder)), generator=freeze(Rotator(g)), info=info)


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _deviations(cfg: dict) -> list[str]:
    notes = list(SCALING_NOTES)
    notes.append("target pose = pose of a random same-subject, same-illumination partner image (paper: uniform)")
    if cfg["rec_weight"]:
        notes.append(f"G loss + {cfg['rec_weight']}*L1(x_hat, partner image at the target pose) (not in the paper)")
    if cfg["aux_id_weight"]:
        notes.append(f"G loss + {cfg['aux_id_weight']}*CE(linear(f(x)), id) auxiliary identity head on the encoder")
    notes.append(f"{cfg['iterations']} iterations of batch {cfg['batch_size']} (paper: tens of epochs on Multi-PIE)")
    return notes
