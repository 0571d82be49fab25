"""CR-GAN (Tian et al., IJCAI 2018), scaled for 64×64 on a CPU (reference/faces.md §2).

Networks: encoder E: x -> (view logits v̄ (N, 13), z̄ (N, z_dim)); generator G: [one-hot view, z] -> image;
critic D: x -> (WGAN score (N,), view logits (N, 13)), no batch norm. Identity feature = z̄ = E(x).

One iteration on a batch of same-identity pairs (x1, v1, x2, v2) (§2.3, the official ``train.py``):
  1. generation path, D:  D_s(G(v1, z)) − D_s(x1) + gp·GP + CE(D_v(x1), v1),   z ~ U(−1, 1)
  2. generation path, G:  −D_s(x̄) + CE(D_v(x̄), v1)
  3. reconstruction path: with prob. ½ "reconstruct fake" (source x̄, view v1, target x̄, only E stepped),
     else source x1 at view v2 with target x2 (E and G stepped). x̄̄ = G(v_t, E_z(source)).
     D: D_s(x̄̄) − D_s(x2) + gp·GP + CE(D_v(x2), v2)
  4. E(+G):  −D_s(x̄̄) + l1_weight·L1(x̄̄, target) + CE(D_v(x̄̄), v_t) + 0.01·CE(E_v(source), v_source)
Adam lr 1e-4, betas (0, 0.9) as the paper's code. Deviations (recorded in ``info``): plain conv blocks (BN+ELU
in E/G, ELU in D) instead of residual blocks; the gradient penalty is per sample (the release takes one
norm over the whole batch); view heads give logits to one cross-entropy (the release applies softmax twice);
the GP in step 3 interpolates x2 (the release mixes x1 there); views are the 13-yaw grid (release: 9).

Partner views (``partner_same_illum=False``, the default in every profile; a recorded deviation): x2 is a
random view of the same subject under *any* lighting. The release pairs views of one Multi-PIE session and
illumination, so the reconstruction path rewards a z̄ that carries the input's lighting too; with five lights
and no identity labels, that z̄ matched a frontal neutral-light gallery no better than pixels did (quick
profile, rank-1 12-25 % at every |yaw|). A partner under a random light makes the lighting unpredictable from
x1, so only the shared content -- identity -- pays off in z̄, which is the two-pathway idea (z̄ = identity,
v = view) applied to the nuisance this data set adds. ``partner_same_illum=True`` restores the release pairing.
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
ARCH = "crgan-64-v1"

CONFIGS: dict[str, dict[str, Any]] = {
    "smoke": dict(iterations=3, batch_size=8, width=4, trunk_dim=16, z_dim=8, lr=1e-4, beta1=0.0, beta2=0.9,
                  gp_weight=10.0, l1_weight=4.0, view_weight=0.01, partner_same_illum=False),
    "quick": dict(iterations=1200, batch_size=32, width=16, trunk_dim=128, z_dim=119, lr=2e-4, beta1=0.0,
                  beta2=0.9, gp_weight=10.0, l1_weight=4.0, view_weight=0.01, partner_same_illum=False),
    "paper": dict(iterations=20000, batch_size=64, width=32, trunk_dim=256, z_dim=119, lr=1e-4, beta1=0.0,
                  beta2=0.9, gp_weight=10.0, l1_weight=4.0, view_weight=0.01, partner_same_illum=False),
}


class Encoder(nn.Module):
    """E: (N, 3, S, S) in [0, 1] -> (view logits (N, 13), z̄ (N, z_dim))."""

    def __init__(self, *, image_size: int, width: int, trunk_dim: int, z_dim: int) -> None:
        super().__init__()
        self.trunk = Trunk(image_size=image_size, width=width, out_dim=trunk_dim)
        self.fc_v = nn.Linear(trunk_dim, NUM_POSES)
        self.fc_z = nn.Linear(trunk_dim, z_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.fc_v(h), self.fc_z(h)


class Generator(nn.Module):
    """G: (view class (N,) int64 0..12, z (N, z_dim)) -> (N, 3, S, S) in [0, 1]."""

    def __init__(self, *, image_size: int, width: int, z_dim: int) -> None:
        super().__init__()
        self.decoder = Decoder(in_dim=NUM_POSES + z_dim, image_size=image_size, width=width)

    def forward(self, view: Tensor, z: Tensor) -> Tensor:
        return self.decoder(torch.cat([F.one_hot(view, NUM_POSES).to(z.dtype), z], dim=1))


class Critic(nn.Module):
    """D: (N, 3, S, S) in [0, 1] -> (WGAN score (N,), view logits (N, 13))."""

    def __init__(self, *, image_size: int, width: int, trunk_dim: int) -> None:
        super().__init__()
        self.trunk = Trunk(image_size=image_size, width=width, out_dim=trunk_dim, norm=False)
        self.head = nn.Linear(trunk_dim, 1 + NUM_POSES)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.head(self.trunk(x))
        return out[:, 0], out[:, 1:]


class IdentityCode(nn.Module):
    """The identity feature z̄ = E_z(x): (N, 3, S, S) in [0, 1] -> (N, z_dim)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)[1]


class Rotator(nn.Module):
    """``rotator(x, yaw)``: G(yaw, E_z(x)), (N, 3, S, S) in [0, 1] -> same shape, at yaw degrees."""

    def __init__(self, encoder: Encoder, generator: Generator) -> None:
        super().__init__()
        self.encoder, self.generator = encoder, generator

    def forward(self, x: Tensor, yaw: Tensor | int) -> Tensor:
        view = pose_index(yaw).to(x.device).expand(x.shape[0])
        return self.generator(view, self.encoder(x)[1])


def _critic_loss(d: Critic, real: Tensor, fake: Tensor, view: Tensor, gp_weight: float) -> Tensor:
    s_real, v_real = d(real)
    s_fake, _ = d(fake)
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(d(mix)[0].sum(), mix, create_graph=True)
    gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return s_fake.mean() - s_real.mean() + gp_weight * gp + F.cross_entropy(v_real, view)


def _step(opt: torch.optim.Optimizer, loss: Tensor, *others: torch.optim.Optimizer) -> None:
    for o in (opt, *others):
        o.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    for o in others:
        o.step()


def _train(e: Encoder, g: Generator, d: Critic, trainset: Any, cfg: dict, *, device: torch.device, seed: int,
           progress: bool) -> dict[str, Any]:
    for m in (e, g, d):
        m.to(device).train()
    sampler = PairSampler(trainset.subject, trainset.illum, generator=torch.Generator().manual_seed(seed),
                          match_illum=cfg["partner_same_illum"])
    poses = pose_index(trainset.yaw)
    adam = dict(lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]))
    opt_e, opt_g, opt_d = (torch.optim.Adam(m.parameters(), **adam) for m in (e, g, d))
    losses = LossLog(every=max(1, cfg["iterations"] // 20))
    bar = tqdm(range(cfg["iterations"]), desc="crgan", disable=not progress, leave=False)
    for it in bar:
        i1, i2 = sampler.sample(cfg["batch_size"])
        x1, x2 = trainset.x[i1].to(device), trainset.x[i2].to(device)
        v1, v2 = poses[i1].to(device), poses[i2].to(device)
        z = torch.rand(x1.shape[0], cfg["z_dim"], device=device) * 2 - 1

        x_bar = g(v1, z)                                         # 1-2: generation path
        _step(opt_d, _critic_loss(d, x1, x_bar.detach(), v1, cfg["gp_weight"]))
        s, v = d(x_bar)
        loss_gen = -s.mean() + F.cross_entropy(v, v1)
        _step(opt_g, loss_gen)

        fake_branch = bool(torch.rand(()) < 0.5)                 # 3-4: reconstruction path
        src, v_src, v_t, target = (x_bar.detach(), v1, v1, x_bar.detach()) if fake_branch else (x1, v1, v2, x2)
        v_logits, z_bar = e(src)
        x_rec = g(v_t, z_bar)
        _step(opt_d, _critic_loss(d, x2, x_rec.detach(), v2, cfg["gp_weight"]))
        s, v = d(x_rec)
        l1 = (x_rec - target).abs().sum(1).mean()                # per-pixel channel sum, as the release
        loss_rec = (-s.mean() + cfg["l1_weight"] * l1 + F.cross_entropy(v, v_t)
                    + cfg["view_weight"] * F.cross_entropy(v_logits, v_src))
        if fake_branch:
            _step(opt_e, loss_rec)
            opt_g.zero_grad(set_to_none=True)
        else:
            _step(opt_e, loss_rec, opt_g)

        means = losses.add(it, gen=loss_gen.item(), rec=loss_rec.item(), l1=l1.item(),
                           e_view_acc=(v_logits.argmax(1) == v_src).float().mean().item())
        if progress and it % 10 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
    return {"iterations": cfg["iterations"], "losses": losses.history}


def build(trainset: Any, *, config: dict | None = None, cache_dir: Path, device: Any = "cpu", seed: int = 0,
          progress: bool = True) -> FaceModel:
    """Train (or load from ``cache_dir``) a CR-GAN on ``trainset``; features = z̄ = E_z(x) (N, z_dim)."""
    cfg = resolve_config("crgan", CONFIGS["quick"], config)
    device = torch.device(device)
    size = int(trainset.x.shape[-1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        e = Encoder(image_size=size, width=cfg["width"], trunk_dim=cfg["trunk_dim"], z_dim=cfg["z_dim"])
        g = Generator(image_size=size, width=cfg["width"], z_dim=cfg["z_dim"])
        d = Critic(image_size=size, width=cfg["width"], trunk_dim=cfg["trunk_dim"])
        for m in (e, g, d):
            init_weights(m)
    info, path = cached_build(
        model_key="crgan", arch=ARCH, trainset=trainset, config=cfg, seed=seed, cache_dir=cache_dir,
        modules={"encoder": e, "generator": g, "critic": d},
        train=lambda: _train(e, g, d, trainset, cfg, device=device, seed=seed, progress=progress))
    e.to(device)
    g.to(device)
    info.update(checkpoint=str(path), feature="z_bar = E_z(x), the encoder's identity code",
                params={"encoder": _count(e), "generator": _count(g), "critic": _count(d)},
                deviations=[*SCALING_NOTES, *DEVIATIONS, _PARTNER[bool(cfg["partner_same_illum"])],
                            f"{cfg['iterations']} iterations of batch {cfg['batch_size']} (paper: 25 epochs)"])
    freeze(e)
    freeze(g)
    return FaceModel(features=freeze(IdentityCode(e)), generator=freeze(Rotator(e, g)), info=info)


DEVIATIONS = (
    "plain 3x3 conv blocks (BN+ELU in E and G, ELU without BN in D) instead of ResNet-WGAN-GP residual blocks",
    "per-sample gradient penalty (release: one norm over the whole batch)",
    "view heads output logits to one cross-entropy (release: softmax then CrossEntropyLoss)",
    "reconstruction-path GP interpolates x2 with the reconstruction (release: x1)",
    "13 views on the -90..90 yaw grid (release: 9 views within +-60)",
)
_PARTNER = {   # by partner_same_illum
    True: "partner view x2: same subject and illumination, any pose (as the release: one session and light)",
    False: "partner view x2: same subject, any pose and any illumination (release: same session and light), so"
           " z_bar cannot carry the input's lighting into the reconstruction",
}


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
