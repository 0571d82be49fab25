"""The registered ``defensegan`` defense: generator (shipped or trained) + projection purifier + classifier.

Profile keys read from ``ctx.profile``: ``gan_iters`` (generator iterations when the generator must be
trained; default :data:`DEFAULT_GAN_ITERS`) and ``rec_train_images`` (Defense-GAN-Rec: how many training
images are replaced by their reconstructions; default all of them).
"""
from __future__ import annotations

import logging
from typing import Any, Literal, get_args

import torch

from bench.cache import content_key
from bench.errors import BenchError
from defenses.base import DefenseContext, DefenseParts
from defenses.defensegan.purifier import DefenseGANPurifier, LRSchedule, ZInit

log = logging.getLogger(__name__)

Variant = Literal["orig", "rec"]
DEFAULT_GAN_ITERS = 2000
SUPPORTED = ("mnist", "fashion-mnist")


def load_or_train_generator(dataset: str, *, retrain: bool = False, gan_iters: int | None = None,
                            progress: bool = True) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(frozen generator in eval mode, provenance): the shipped artifact, else a cached or new training run."""
    from defenses.defensegan import artifacts

    if dataset not in SUPPORTED:
        raise BenchError(f"defensegan: dataset {dataset!r} is not supported; valid: {', '.join(SUPPORTED)}")
    pt, _ = artifacts.artifact_paths(dataset)
    if pt.exists() and not retrain:
        gen, prov = artifacts.load_artifact(dataset)
        return gen, {"source": "artifact", **prov}
    from defenses.defensegan import train

    iters = int(gan_iters or DEFAULT_GAN_ITERS)
    images, sha = train.load_train_images(dataset)
    config = train.WGANConfig(iters=iters)
    gen, out = train.run(dataset, images, config=config, dataset_sha256=sha, progress=progress,
                         command=f"defenses.defensegan.factory (retrain={retrain}, gan_iters={iters})")
    gen.requires_grad_(False)
    prov = {"source": "trained", "iterations": iters, "seed": config.seed, "run_dir": str(out),
            "key": train.gan_key(train.tensor_sha256(images), config), "dataset_sha256": sha}
    return gen.eval(), prov


def build(ctx: DefenseContext, *, L: int = 200, R: int = 10, lr: float = 10.0, momentum: float = 0.7,
          z_init: ZInit = "code", lr_schedule: LRSchedule = "constant", variant: Variant = "orig",
          retrain: bool = False, max_batch: int = 1000, unrolled_steps: int | None = None) -> DefenseParts:
    """Defense-GAN for one cell: ``variant="orig"`` keeps ``ctx.classifier``; ``"rec"`` trains one on
    Defense-GAN reconstructions of the training images (``ctx.train_classifier(transform=...)``)."""
    if variant not in get_args(Variant):
        raise BenchError(f"invalid defensegan variant: {variant!r}; valid choices: {', '.join(get_args(Variant))}")
    gen, prov = load_or_train_generator(ctx.dataset, retrain=retrain, gan_iters=ctx.profile.get("gan_iters"))
    gen = gen.to(ctx.device)
    purifier = DefenseGANPurifier(gen, L=L, R=R, lr=lr, momentum=momentum, z_init=z_init,
                                  lr_schedule=lr_schedule, max_batch=max_batch, unrolled_steps=unrolled_steps)
    settings = {"L": L, "R": R, "lr": lr, "momentum": momentum, "z_init": z_init, "lr_schedule": lr_schedule,
                "variant": variant, "unrolled_steps": unrolled_steps}
    notes: dict[str, Any] = {"generator": prov, "purifier": settings}
    classifier = ctx.classifier
    if variant == "rec":
        n_rec = ctx.profile.get("rec_train_images")
        transform, key = _reconstruct_transform(purifier, prov, settings, n_rec=n_rec, seed=ctx.seed)
        classifier = ctx.train_classifier(transform=transform, transform_key=key)
        notes["rec_train_images"] = n_rec if n_rec is not None else "all"
    return DefenseParts(purifier=purifier, classifier=classifier, notes=notes)


def _reconstruct_transform(purifier: DefenseGANPurifier, prov: dict[str, Any], settings: dict[str, Any], *,
                           n_rec: int | None, seed: int) -> tuple[Any, str]:
    """A transform replacing the first ``n_rec`` (None: all) training images by their projections.

    Images beyond ``n_rec`` stay original (a CPU budget compromise: the released code reconstructs all).
    Seeded with its own RNG fork, so it neither depends on nor disturbs the caller's RNG state.
    """
    if n_rec is not None and (not isinstance(n_rec, int) or n_rec < 0):
        raise BenchError(f"invalid profile rec_train_images: {n_rec!r}; expected an integer >= 0 or unset")
    key = content_key({"defense": "defensegan-rec", "generator": prov.get("sha256") or prov.get("key"),
                       "iterations": prov.get("iterations"), "purifier": settings, "n_rec": n_rec, "seed": seed})

    def transform(x: torch.Tensor) -> torch.Tensor:
        n = len(x) if n_rec is None else min(n_rec, len(x))
        device = next(purifier.generator.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            chunks = [purifier.purify(x[s:min(s + 500, n)].to(device))[0].cpu() for s in range(0, n, 500)]
        rec = torch.cat(chunks) if chunks else x[:0]
        log.info("Defense-GAN-Rec: reconstructed %d of %d training images", n, len(x))
        return torch.cat([rec, x[n:]])

    return transform, key
