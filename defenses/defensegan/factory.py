"""The registered ``defense-gan`` defense: generator (shipped or trained) + projection purifier + classifier.

Profile keys read from ``ctx.profile`` (a spec's ``settings``):

* ``gan_iters`` — generator iterations when no artifact is shipped (default :data:`DEFAULT_GAN_ITERS`): the
  run's fp16 snapshot at that iteration is used, trained first when missing; ignored when
  ``weights/<dataset>-wgan-gp.pt`` exists.
* ``gan_seed`` — seed of that training run (default 0, the recipe's). A run folder is keyed by the seed, not
  by the iteration count, so a tiny CI generator with its own seed never touches a long run of seed 0.
* ``rec_train_images`` — Defense-GAN-Rec: its classifier is trained on exactly this many reconstructed
  training images (the first ones of the split; default: as many as the cell's ``train`` config uses).

Every record's notes carry the generator's provenance, the purifier settings and ``deviations``: one line
per way this cell differs from the paper's recipe (reference/defensegan.md §2.2–§2.3).
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
import sys
from typing import Any, Literal, get_args

import torch

from bench.cache import cache_root, content_key
from bench.errors import BenchError
from defenses.base import DefenseContext, DefenseParts
from defenses.defensegan import lineage
from defenses.defensegan.purifier import DefenseGANPurifier, LRSchedule, ZInit

log = logging.getLogger(__name__)

Variant = Literal["orig", "rec"]
DEFAULT_GAN_ITERS = 2000
RECIPE_GAN_ITERS = 200_000  # released config: 200k generator iterations (reference/defensegan.md §2.2)
RECIPE = {"L": 200, "R": 10, "lr": 10.0, "momentum": 0.7}
SUPPORTED = ("mnist", "fashion-mnist")
_TRAINED: dict[tuple, tuple[torch.nn.Module, dict[str, Any]]] = {}  # generators trained (or resumed) here
_RECS: dict[str, torch.Tensor] = {}  # reconstructions of training images, shared by the models of one process


def _bars() -> bool:
    """Progress bars for generator training follow the harness's rule (``bench.progress``)."""
    forced = os.environ.get("BENCH_PROGRESS")
    return forced != "0" if forced is not None else sys.stderr.isatty()


def _profile_int(profile: dict[str, Any], key: str, *, minimum: int) -> int | None:
    value = profile.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise BenchError(f"invalid profile {key}: {value!r}; expected an integer >= {minimum} or unset")
    return value


def load_or_train_generator(dataset: str, *, retrain: bool = False, gan_iters: int | None = None,
                            gan_seed: int = 0, progress: bool = True) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(frozen generator in eval mode, provenance): the shipped artifact, else a cached or new training run.

    A generator from a training run is kept in memory for the process (a run folder is not re-read and its
    50 000 training images are not re-hashed by every cell); a shipped artifact is re-verified every time.
    """
    from defenses.defensegan import artifacts

    if dataset not in SUPPORTED:
        raise BenchError(f"defense-gan: dataset {dataset!r} is not supported; valid: {', '.join(SUPPORTED)}")
    pt, _ = artifacts.artifact_paths(dataset)
    if pt.exists() and not retrain:
        gen, prov = artifacts.load_artifact(dataset)
        return gen, {"source": "artifact", **prov}
    iters = int(gan_iters or DEFAULT_GAN_ITERS)
    memo = (dataset, iters, gan_seed, str(cache_root()))
    if memo not in _TRAINED:
        _TRAINED[memo] = _train_generator(dataset, retrain=retrain, iters=iters, gan_seed=gan_seed, progress=progress)
    gen, prov = _TRAINED[memo]
    return copy.deepcopy(gen), dict(prov)


def _train_generator(dataset: str, *, retrain: bool, iters: int, gan_seed: int,
                     progress: bool) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The fp16 snapshot at ``iters`` of the content-keyed run (trained first when missing), as fp32.

    Every path yields the same weights (a fresh run, a resumed one, another process's, a shipped artifact are
    all fp16), so a table computed in one process matches one computed by several. Training is serialised
    across processes by a blocking lock beside the run folder; a finished snapshot is read without it.
    """
    import fcntl

    from bench.cache import sha256_file
    from defenses.defensegan import artifacts, train

    images, sha = train.load_train_images(dataset)
    config = train.WGANConfig(iters=iters, seed=gan_seed)
    key = train.gan_key(train.tensor_sha256(images), config)
    out = train.run_dir(dataset, key)
    snapshot = train.snapshot_path(out, iters)
    if not snapshot.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.parent / f"{out.name}.factory-lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another cell may be training this very generator: wait for it
            if not snapshot.exists():
                train.run(dataset, images, config=config, dataset_sha256=sha, progress=progress,
                          command=f"defenses.defensegan.factory (retrain={retrain}, gan_iters={iters}, "
                                  f"seed={gan_seed})")
    gen = artifacts.generator_from_state(torch.load(snapshot, map_location="cpu", weights_only=True),
                                         latent_dim=config.latent_dim, dim=config.dim)
    prov = {"source": "trained", "iterations": iters, "seed": config.seed, "run_dir": str(out), "key": key,
            "snapshot": snapshot.name, "sha256": sha256_file(snapshot), "dataset_sha256": sha}
    return gen, prov


def fingerprint(*, dataset: str, params: dict[str, Any], settings: dict[str, Any]) -> dict[str, str]:
    """The shipped generator a cell will load, by SHA-256 (``{}`` when it trains one: the training run is
    keyed by the profile's ``gan_iters`` / ``gan_seed``, already in the cell). Read from the provenance file;
    loading checks the weights against it."""
    from defenses.defensegan import artifacts

    pt, js = artifacts.artifact_paths(dataset)
    if params.get("retrain") or not pt.exists() or dataset not in SUPPORTED:
        return {}
    return {"defense-gan generator": artifacts.verify_artifact(dataset)["sha256"]}


def deviations(prov: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """How a generator (``prov``) and purifier ``settings`` differ from the paper's recipe, one line each."""
    out = []
    iters = prov.get("iterations")
    if iters is None or int(iters) < RECIPE_GAN_ITERS:
        out.append(f"generator trained {iters} of the recipe's {RECIPE_GAN_ITERS} iterations ({prov.get('source')})")
    out.append("WGAN-GP slope norm over C·H·W (the released code sums over the H axis only)")
    out += lineage.deviations(prov)
    for name, value in RECIPE.items():
        if settings.get(name) != value:
            out.append(f"projection {name} = {settings.get(name)} (recipe: {value})")
    steps = settings.get("unrolled_steps")
    if steps is not None and steps < settings.get("L", RECIPE["L"]):
        out.append(f"unrolled threat differentiates through the first {steps} of the L = {settings.get('L')} steps")
    return out


def build(ctx: DefenseContext, *, L: int = 200, R: int = 10, lr: float = 10.0, momentum: float = 0.7,
          z_init: ZInit = "code", lr_schedule: LRSchedule = "constant", variant: Variant = "orig",
          retrain: bool = False, max_batch: int = 1000, unrolled_steps: int | None = None) -> DefenseParts:
    """Defense-GAN for one cell: ``variant="orig"`` keeps ``ctx.classifier``; ``"rec"`` trains one on
    Defense-GAN reconstructions of ``rec_train_images`` training images (``ctx.train_classifier``)."""
    if variant not in get_args(Variant):
        raise BenchError(f"invalid defense-gan variant: {variant!r}; valid choices: {', '.join(get_args(Variant))}")
    gan_seed = _profile_int(ctx.profile, "gan_seed", minimum=0) or 0
    gen, prov = load_or_train_generator(ctx.dataset, retrain=retrain, gan_seed=gan_seed, progress=_bars(),
                                        gan_iters=_profile_int(ctx.profile, "gan_iters", minimum=1))
    gen = gen.to(ctx.device)
    purifier = DefenseGANPurifier(gen, L=L, R=R, lr=lr, momentum=momentum, z_init=z_init,
                                  lr_schedule=lr_schedule, max_batch=max_batch, unrolled_steps=unrolled_steps)
    settings = {"L": L, "R": R, "lr": lr, "momentum": momentum, "z_init": z_init, "lr_schedule": lr_schedule,
                "variant": variant, "unrolled_steps": unrolled_steps}
    notes: dict[str, Any] = {"generator": prov, "purifier": settings, "deviations": deviations(prov, settings)}
    classifier = ctx.classifier
    if variant == "rec":
        n_rec = _profile_int(ctx.profile, "rec_train_images", minimum=1)
        transform, key = _reconstruct_transform(purifier, prov, settings, n_rec=n_rec, seed=ctx.seed)
        classifier = ctx.train_classifier(transform=transform, transform_key=key, train_images=n_rec)
        notes["rec_train_images"] = n_rec if n_rec is not None else "as the train config"
    return DefenseParts(purifier=purifier, classifier=classifier, notes=notes)


def _reconstruct_transform(purifier: DefenseGANPurifier, prov: dict[str, Any], settings: dict[str, Any], *,
                           n_rec: int | None, seed: int) -> tuple[Any, str]:
    """A transform replacing every training image it gets, (N, 1, 28, 28) in [0, 1], by its projection.

    The harness hands it the first ``n_rec`` training images (``train_images=n_rec``), so the Rec classifier
    sees reconstructions only. Seeded with its own RNG fork, so it neither depends on nor disturbs the
    caller's RNG; results are kept in memory, so the models of one run reconstruct the images once.
    """
    key = content_key({"defense": "defensegan-rec", "generator": prov.get("sha256") or prov.get("key"),
                       "iterations": prov.get("iterations"), "purifier": settings, "n_rec": n_rec, "seed": seed})

    def transform(x: torch.Tensor) -> torch.Tensor:
        memo = f"{key}-{hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()}"
        if memo not in _RECS:
            device = next(purifier.generator.parameters()).device
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                chunks = [purifier.purify(x[s:s + 500].to(device))[0].cpu() for s in range(0, len(x), 500)]
            _RECS[memo] = torch.cat(chunks) if chunks else x[:0]
            log.info("Defense-GAN-Rec: reconstructed %d training images", len(x))
        return _RECS[memo]

    return transform, key


build.fingerprint = fingerprint  # type: ignore[attr-defined]  # read by bench.runner.fingerprint_artifacts
