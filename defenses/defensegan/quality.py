"""How good is a Defense-GAN generator? Reconstruction error, sample sheets, accuracy after projection.

All functions take a generator (latents (N, d) -> images (N, 1, 28, 28) in [0, 1]) and seed torch's
global RNG through ``seed`` inside a forked RNG state, so they neither depend on nor disturb the caller.
FGSM here is the *oblivious* attack: computed on the bare classifier with the true labels, then the
perturbed images are projected. Figures are returned, not written (``fig.savefig(path)`` to save).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from defenses.defensegan.purifier import DefenseGANPurifier


def _project(generator: nn.Module, x: torch.Tensor, *, seed: int,
             **purifier_kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rec, diag = DefenseGANPurifier(generator, **purifier_kw).purify(x)
    return rec, diag["rec_mse"]


def reconstruction_mse(generator: nn.Module, images: torch.Tensor, *, L: int = 200, R: int = 10, seed: int = 0,
                       **purifier_kw: Any) -> float:
    """Mean over images (N, 1, 28, 28) in [0, 1] of the per-pixel MSE between x and its projection."""
    return float(_project(generator, images, L=L, R=R, seed=seed, **purifier_kw)[1].mean())


def fgsm(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """One signed-gradient step of size eps on the cross-entropy of the bare classifier, clipped to [0, 1]."""
    x = x.detach().clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(classifier(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


@torch.no_grad()
def _accuracy(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((classifier(x).argmax(1) == y).float().mean())


def projection_accuracy(generator: nn.Module, classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                        *, eps: float = 0.3, L: int = 200, R: int = 10, seed: int = 0,
                        **purifier_kw: Any) -> dict[str, float]:
    """Accuracy of ``classifier`` on clean images, on FGSM images, and on the projections of both.

    Returns ``acc_clean``, ``acc_fgsm`` (bare classifier), ``acc_clean_projected``,
    ``acc_fgsm_projected`` (Defense-GAN, oblivious FGSM) and the mean ``rec_mse`` of each projection.
    """
    classifier = classifier.eval()
    adv = fgsm(classifier, images, labels, eps)
    rec_clean, mse_clean = _project(generator, images, L=L, R=R, seed=seed, **purifier_kw)
    rec_adv, mse_adv = _project(generator, adv, L=L, R=R, seed=seed + 1, **purifier_kw)
    return {"n": len(images), "eps": eps, "L": L, "R": R,
            "acc_clean": _accuracy(classifier, images, labels), "acc_fgsm": _accuracy(classifier, adv, labels),
            "acc_clean_projected": _accuracy(classifier, rec_clean, labels),
            "acc_fgsm_projected": _accuracy(classifier, rec_adv, labels),
            "rec_mse_clean": float(mse_clean.mean()), "rec_mse_fgsm": float(mse_adv.mean())}


def generator_row(gen: nn.Module, classifier: nn.Module | None, images: torch.Tensor,
                  labels: torch.Tensor | None = None, *, eps: float = 0.3, L: int = 200, R: int = 10,
                  seed: int = 0, **purifier_kw: Any) -> dict[str, Any]:
    """:func:`projection_accuracy` of one generator, or only its clean reconstruction MSE without a classifier."""
    if classifier is None or labels is None:
        return {"rec_mse_clean": reconstruction_mse(gen, images, L=L, R=R, seed=seed, **purifier_kw)}
    return projection_accuracy(gen, classifier, images, labels, eps=eps, L=L, R=R, seed=seed, **purifier_kw)


def snapshot_curve(run_dir: str | Path, classifier: nn.Module | None, images: torch.Tensor,
                   labels: torch.Tensor | None = None, *, iterations: list[int] | None = None,
                   **kw: Any) -> list[dict[str, Any]]:
    """:func:`generator_row` for each generator snapshot of a training run (or those in ``iterations``)."""
    from defenses.defensegan.artifacts import generator_from_state
    from defenses.defensegan.wgan_gp import list_snapshots

    rows = []
    for it, path in list_snapshots(Path(run_dir)).items():
        if iterations is not None and it not in iterations:
            continue
        state = torch.load(path, map_location="cpu", weights_only=True)
        gen = generator_from_state(state, latent_dim=state["fc.weight"].shape[1],
                                   dim=state["deconv3.weight"].shape[0])
        rows.append({"iteration": it, **generator_row(gen, classifier, images, labels, **kw)})
    return rows


def sample_sheet(generator: nn.Module, images: torch.Tensor, *, n_samples: int = 32, L: int = 200, R: int = 10,
                 seed: int = 0, title: str = "", **purifier_kw: Any) -> Any:
    """Figure: random samples G(z), z ~ N(0, I), above rows of test images and their projections."""
    from matplotlib.figure import Figure

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        samples = generator(torch.randn(n_samples, generator.latent_dim)).cpu()
    rec, mse = _project(generator, images, L=L, R=R, seed=seed, **purifier_kw)
    cols = 16
    # a row of samples, then alternating rows of test images and their projections (same columns)
    rows = [("samples G(z)", samples[s:s + cols]) for s in range(0, n_samples, cols)]
    for s in range(0, len(images), cols):
        rows += [("test images", images[s:s + cols].cpu()), ("projections", rec[s:s + cols].cpu())]
    fig = Figure(figsize=(cols * 0.6, len(rows) * 0.6 + 0.8), layout="constrained")
    grid = fig.add_gridspec(len(rows), cols)
    for r, (label, block) in enumerate(rows):
        for k, img in enumerate(block):
            ax = fig.add_subplot(grid[r, k])
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(label, fontsize=5)
    fig.suptitle(f"{title} (mean projection MSE {float(mse.mean()):.4f}, L={L}, R={R})".strip(), fontsize=9)
    return fig
