"""Defense-GAN's projection onto the generator's range, batched over images × restarts.

For inputs x (N, C, H, W) in [0, 1], each image gets R latents z (N·R of them, one tensor), L steps of
SGD with momentum on the per-image per-pixel-mean squared error ``mean((G(z) − x)²)`` (summed over
restarts, so every z follows the gradient of its own error), and the restart with the lowest final
error is kept (reference: ``models/gan.py`` ``DefenseGANBase.reconstruct`` of the released code).

The SGD update is written out (``v ← m·v + g;  z ← z − lr·v``), which is exactly ``torch.optim.SGD``
with dampening 0 and TF1's ``MomentumOptimizer``. The output is G(z) after all L updates (the released
TF loop returns the image from before its last update — a one-step difference).
"""
from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn

from bench.errors import BenchError
from defenses.base import Diagnostics, Purifier

ZInit = Literal["code", "prior"]
LRSchedule = Literal["constant", "step"]


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise BenchError(f"invalid Defense-GAN {name}: {value!r}; valid choices: {', '.join(map(str, choices))}")


def z_init_scale(z_init: ZInit, latent_dim: int) -> float:
    """Std of the initial latents: "code" = 1/√latent_dim (released code), "prior" = 1 (N(0, I))."""
    return 1.0 / math.sqrt(latent_dim) if z_init == "code" else 1.0


def lr_at(step: int, *, lr: float, L: int, schedule: LRSchedule) -> float:
    """Learning rate of update ``step`` (0-based): constant, or ×0.1 from step ceil(0.8·L) on ("step")."""
    if schedule == "step" and step >= math.ceil(0.8 * L):
        return lr * 0.1
    return lr


class DefenseGANPurifier(Purifier):
    """``x (N, C, H, W) in [0, 1] -> G(z*) (N, C, H, W) in [0, 1]``, z* the best of R projected latents.

    ``max_batch`` bounds the latents (images × restarts) processed at once; it changes memory use, never
    the result, because all initial latents are drawn up front from torch's global RNG.
    """

    stochastic = True

    def __init__(self, generator: nn.Module, *, L: int = 200, R: int = 10, lr: float = 10.0,
                 momentum: float = 0.7, z_init: ZInit = "code", lr_schedule: LRSchedule = "constant",
                 max_batch: int = 1000, unrolled_steps: int | None = None) -> None:
        super().__init__()
        _check_choice("z_init", z_init, get_args(ZInit))
        _check_choice("lr_schedule", lr_schedule, get_args(LRSchedule))
        for name, value in (("L", L), ("R", R), ("max_batch", max_batch)):
            if not isinstance(value, int) or value < 1:
                raise BenchError(f"invalid Defense-GAN {name}: {value!r}; expected an integer >= 1")
        if unrolled_steps is not None and not 1 <= unrolled_steps:
            raise BenchError(f"invalid Defense-GAN unrolled_steps: {unrolled_steps!r}; expected >= 1 or None")
        self.generator = generator.eval().requires_grad_(False)
        if all(q.device.type == "cpu" for q in generator.parameters()):
            # oneDNN's (transposed) convolutions run ~15 % faster on channels-last weights on CPU
            self.generator.to(memory_format=torch.channels_last)
        self.L, self.R, self.lr, self.momentum = L, R, float(lr), float(momentum)
        self.z_init, self.lr_schedule, self.max_batch = z_init, lr_schedule, max_batch
        self.unrolled_steps = unrolled_steps
        self.latent_dim = int(getattr(generator, "latent_dim"))

    def extra_repr(self) -> str:
        return (f"L={self.L}, R={self.R}, lr={self.lr}, momentum={self.momentum}, z_init={self.z_init!r}, "
                f"lr_schedule={self.lr_schedule!r}")

    def train(self, mode: bool = True) -> "DefenseGANPurifier":
        super().train(mode)
        self.generator.eval()  # the generator has no train-time behaviour to switch on
        return self

    def initial_latents(self, n: int, device: torch.device | None = None) -> torch.Tensor:
        """Initial latents (n·R, latent_dim) from the global RNG; restart r of image i is row i·R + r."""
        scale = z_init_scale(self.z_init, self.latent_dim)
        return torch.randn(n * self.R, self.latent_dim, device=device) * scale

    def _descend(self, z: torch.Tensor, xr: torch.Tensor, *, steps: int, create_graph: bool) -> torch.Tensor:
        """``steps`` momentum-SGD updates of latents z (M, d) towards targets xr (M, C, H, W)."""
        G, P = self.generator, xr[0].numel()
        if not create_graph:
            z = z.detach().clone().requires_grad_(True)
            v = torch.zeros_like(z)
            for t in range(steps):
                with torch.enable_grad():
                    out = G(z)
                    (g,) = torch.autograd.grad(out, z, grad_outputs=(out - xr).mul_(2.0 / P))
                with torch.no_grad():
                    v.mul_(self.momentum).add_(g)
                    z.sub_(v, alpha=lr_at(t, lr=self.lr, L=self.L, schedule=self.lr_schedule))
            return z.detach()
        # unrolled: every update stays in the graph, so d(output)/d(x) flows through all of them
        z = z.detach().clone().requires_grad_(True)
        v = torch.zeros_like(z)
        for t in range(steps):
            loss = ((G(z) - xr) ** 2).flatten(1).mean(1).sum()
            (g,) = torch.autograd.grad(loss, z, create_graph=True)
            v = self.momentum * v + g
            z = z - lr_at(t, lr=self.lr, L=self.L, schedule=self.lr_schedule) * v
        return z

    def project(self, x: torch.Tensor, z0: torch.Tensor | None = None, *, unrolled: bool = False,
                steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Project x (N, C, H, W) in [0, 1]: returns (G(z*) (N, C, H, W), per-image MSE (N,), z* (N, d)).

        ``z0`` (N·R, d) overrides the random initial latents (restart r of image i at row i·R + r).
        """
        n, R = x.shape[0], self.R
        device = next(self.generator.parameters()).device
        x = x.to(device)
        if z0 is None:
            z0 = self.initial_latents(n, device)
        z0 = z0.to(device=device, dtype=x.dtype)
        steps = self.L if steps is None else steps
        per_chunk = max(1, self.max_batch // R)
        recs, errs, zs = [], [], []
        for s in range(0, n, per_chunk):
            xc = x[s:s + per_chunk]
            b = xc.shape[0]
            xr = xc.detach().repeat_interleave(R, 0) if not unrolled else xc.repeat_interleave(R, 0)
            z = self._descend(z0[s * R:(s + b) * R], xr, steps=steps, create_graph=unrolled)
            with torch.set_grad_enabled(unrolled):
                out = self.generator(z)
                err = ((out - xr) ** 2).flatten(1).mean(1).view(b, R)
                best = err.detach().argmin(1)
                rows = torch.arange(b, device=device) * R + best
                recs.append(out[rows])
                errs.append(err[torch.arange(b, device=device), best])
                zs.append(z[rows])
        return torch.cat(recs), torch.cat(errs), torch.cat(zs)

    @torch.no_grad()
    def purify(self, x: torch.Tensor) -> tuple[torch.Tensor, Diagnostics]:
        """x (N, C, H, W) in [0, 1] -> (G(z*) in [0, 1], {"rec_mse": (N,)}); no autograd graph."""
        rec, err, _ = self.project(x.detach())
        return rec, {"rec_mse": err}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.purify(x)[0]

    def unrolled(self, x: torch.Tensor, *, steps: int | None = None) -> torch.Tensor:
        """The released code's white-box setting: G(z*(x)) with autograd through the unrolled descent.

        ``steps`` (default ``unrolled_steps``, else L) may be smaller than L to bound the cost; memory
        grows linearly with it.
        """
        rec, _, _ = self.project(x, unrolled=True, steps=steps if steps is not None else self.unrolled_steps)
        return rec
