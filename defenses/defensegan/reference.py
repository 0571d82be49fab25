"""The straightforward Defense-GAN projection: one image and one restart at a time, ``torch.optim.SGD``.

It follows the released algorithm literally (``DefenseGANBase.reconstruct``, see the reference note
§2.3) and exists to check :class:`~defenses.defensegan.purifier.DefenseGANPurifier` and to time it
(``perf.py``). It is slow on purpose: no batching across images or restarts.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from defenses.defensegan.purifier import LRSchedule, ZInit, z_init_scale


def reference_project(generator: nn.Module, x: torch.Tensor, *, L: int = 200, R: int = 10, lr: float = 10.0,
                      momentum: float = 0.7, z_init: ZInit = "code", lr_schedule: LRSchedule = "constant",
                      z0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Project each image of x (N, C, H, W) in [0, 1]; return (G(z*) (N, C, H, W), MSE (N,)).

    ``z0`` (N·R, d): initial latents, restart r of image i at row i·R + r (default: drawn per image
    from the global RNG with the std of ``z_init``).
    """
    generator = generator.eval()
    d = int(getattr(generator, "latent_dim"))
    recs, errs = [], []
    for i in range(x.shape[0]):
        target = x[i:i + 1].detach()
        z_img = z0[i * R:(i + 1) * R] if z0 is not None else torch.randn(R, d) * z_init_scale(z_init, d)
        best_err, best_rec = math.inf, None
        for r in range(R):
            z = z_img[r:r + 1].detach().clone().requires_grad_(True)
            opt = torch.optim.SGD([z], lr=lr, momentum=momentum)
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=math.ceil(0.8 * L), gamma=0.1)
            for _ in range(L):
                loss = ((generator(z) - target) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if lr_schedule == "step":
                    sched.step()
            with torch.no_grad():
                rec = generator(z)
                err = ((rec - target) ** 2).mean().item()
            if err < best_err:
                best_err, best_rec = err, rec
        recs.append(best_rec)
        errs.append(best_err)
    return torch.cat(recs), torch.tensor(errs)
