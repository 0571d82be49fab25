"""The harness's generator training command: content-keyed run folders in the cache, resumable anywhere.

    python -m defenses.defensegan.train --dataset mnist --until-plateau [--precision bf16] [--warm-start shipped]

The loop itself (recipe, deviations, precision) is :mod:`defenses.defensegan.wgan_gp`. The content key covers
(architecture, data checksum, config without the iteration count, seed; for a run that continues a shipped
generator, that generator), so one run folder serves every iteration count: a longer request resumes it, a
shorter one uses a snapshot. An empty run folder is first seeded from the training state shipped in
``weights/`` for the same key, when there is one (``artifacts.shipped_state``). Without it, ``--warm-start
shipped`` continues the shipped generator in a new run (:mod:`defenses.defensegan.lineage`), so training goes
on across machines that keep no cache. Run folder: ``$BENCH_CACHE/gan/<dataset>-<key[:12]>/``
(``$BENCH_CACHE`` defaults to ``~/.cache/defense-bench``); besides the loop's files it holds
``quality.jsonl``: with ``--until-plateau``, Defense-GAN's oblivious FGSM accuracy at each snapshot.

``--until-plateau`` stops training once that accuracy levels off (:mod:`defenses.defensegan.plateau`);
``--iters`` remains the upper bound. ``--max-minutes`` stops (with a full checkpoint) once that much wall time
has passed, for runs that must fit a session or an accelerator lease; the next call resumes there, on the
same trajectory.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import torch

from bench.cache import cache_root, content_key
from bench.errors import BenchError
from defenses.defensegan.nets import ARCH, Generator
from defenses.defensegan.plateau import PlateauRule, watch_for
from defenses.defensegan.wgan_gp import (Precision, WGANConfig, list_snapshots, snapshot_generator, snapshot_path,
                                         train_wgan_gp)

if TYPE_CHECKING:
    from defenses.defensegan.lineage import WarmStart

log = logging.getLogger(__name__)
__all__ = ["WGANConfig", "gan_key", "list_snapshots", "run", "run_dir", "snapshot_path", "tensor_sha256"]


def tensor_sha256(x: torch.Tensor) -> str:
    """SHA-256 of a tensor's float32 contiguous bytes (so the key does not depend on the loader)."""
    return hashlib.sha256(x.detach().to(torch.float32).contiguous().cpu().numpy().tobytes()).hexdigest()


def gan_key(data_sha256: str, config: WGANConfig, parent: dict[str, Any] | None = None) -> str:
    """Content key of a training run: architecture, data, keyed config and seed (not the iteration count), and
    for a run that continues a shipped generator, that generator (``WarmStart.parent``)."""
    keyed = {"arch": ARCH, "data": data_sha256, "config": config.keyed(), "seed": config.seed}
    return content_key(keyed if parent is None else {**keyed, "parent": parent})


def run_dir(dataset: str, key: str) -> Path:
    """``$BENCH_CACHE/gan/<dataset>-<key[:12]>`` (``$BENCH_CACHE`` defaults to ``~/.cache/defense-bench``)."""
    return cache_root() / "gan" / f"{dataset}-{key[:12]}"


def load_train_images(dataset: str) -> tuple[torch.Tensor, str | None]:
    """The Defense-GAN training split (50 000 images, (N, 1, 28, 28) in [0, 1]) and its catalogue checksum."""
    import bench.data

    split = bench.data.load(dataset, "train")
    return torch.as_tensor(split.x, dtype=torch.float32), getattr(split, "sha256", None)


def run(dataset: str, images: torch.Tensor, *, config: WGANConfig, resume: bool = True, progress: bool = True,
        dataset_sha256: str | None = None, command: str | None = None,
        device: str | torch.device = "cpu", until_plateau: PlateauRule | None = None,
        max_seconds: float | None = None, warm_start: WarmStart | None = None) -> tuple[Generator, Path]:
    """Train into the content-keyed cache folder for ``dataset``; return (generator, run folder).

    ``until_plateau``: also stop at the first snapshot where Defense-GAN's oblivious FGSM accuracy has levelled
    off (:mod:`defenses.defensegan.plateau`); ``config.iters`` stays the upper bound. ``max_seconds``: as in
    :func:`train_wgan_gp`. ``warm_start``: continue that generator in a run keyed by it
    (:mod:`defenses.defensegan.lineage`); the plateau rule then also sees the parent's measured curve.
    """
    if warm_start is not None and warm_start.iteration >= config.iters:
        raise BenchError(f"the warm start is at iteration {warm_start.iteration}; --iters {config.iters} "
                         "leaves nothing to train")
    data_sha = tensor_sha256(images)
    parent = None if warm_start is None else warm_start.parent
    key = gan_key(data_sha, config, parent)
    out = run_dir(dataset, key)
    if resume and warm_start is None:
        _seed_from_shipped(dataset, key, out)
    meta = {"arch": ARCH, "dataset": dataset, "key": key, "data_tensor_sha256": data_sha,
            "dataset_sha256": dataset_sha256, "num_images": len(images), "config": dataclasses.asdict(config),
            "command": command or " ".join(sys.argv), "torch": torch.__version__}
    if warm_start is not None:
        meta.update(parent=parent, parent_provenance=warm_start.provenance)
    watch = None
    if until_plateau is not None:
        watch = watch_for(dataset, out, rule=until_plateau)
        if warm_start is not None and warm_start.curve:
            watch.seed(warm_start.curve)
        if resume and watch.done():
            last = watch.rows()[-1]["iteration"]
            log.info("%s: the FGSM accuracy already levelled off at iteration %d (%s)", out, last, watch.path)
            return snapshot_generator(out, dataclasses.replace(config, iters=last)), out
    gen = train_wgan_gp(images, config=config, out_dir=out, resume=resume, progress=progress, meta=meta,
                        device=device, on_snapshot=watch, max_seconds=max_seconds, warm_start=warm_start)
    return gen, out


def _seed_from_shipped(dataset: str, key: str, out: Path) -> None:
    """Start an empty run folder from the shipped training state of the same run, when there is one.

    The state is copied as ``state.pt`` and the shipped generator as that iteration's snapshot, so the run
    resumes at the shipped iteration and then follows the trajectory an uninterrupted run would have taken.
    """
    from defenses.defensegan import artifacts

    if (out / "state.pt").exists():
        return
    found = artifacts.shipped_state(dataset, key)
    if found is None:
        return
    state, iteration = found
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"state.pt.tmp{os.getpid()}"
    shutil.copyfile(state, tmp)
    os.replace(tmp, out / "state.pt")
    weights, _ = artifacts.artifact_paths(dataset)
    if artifacts.verify_artifact(dataset).get("iterations") == iteration:
        shutil.copyfile(weights, snapshot_path(out, iteration))
    log.info("seeded %s from the shipped training state at iteration %d", out, iteration)


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m defenses.defensegan.train", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion-mnist"])
    p.add_argument("--iters", type=int, default=WGANConfig.iters)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-every", type=int, default=WGANConfig.checkpoint_every)
    p.add_argument("--no-resume", dest="resume", action="store_false")
    p.add_argument("--device", default="cpu", help="cpu | cuda (random numbers are drawn on the CPU either way)")
    p.add_argument("--until-plateau", action="store_true",
                   help="measure Defense-GAN under oblivious FGSM at each snapshot and stop when it levels off")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="checkpoint and stop after this much wall time (resume with the same command)")
    p.add_argument("--patience", type=int, default=PlateauRule.patience, help="snapshots without a gain (default 3)")
    p.add_argument("--min-delta", type=float, default=PlateauRule.min_delta,
                   help="accuracy gain that counts as one (default 0.02)")
    p.add_argument("--warmup", type=int, default=PlateauRule.warmup,
                   help="ignore snapshots before this iteration (default 2000)")
    p.add_argument("--precision", choices=get_args(Precision), default="fp32",
                   help="bf16: forward passes under bfloat16 autocast, 1.6x faster on AVX512-BF16 CPUs (default fp32)")
    p.add_argument("--warm-start", choices=["shipped"], default=None,
                   help="continue the shipped generator (and critic) in a new run keyed by it")
    p.add_argument("--critic-warmup", type=int, default=None,
                   help="with --warm-start and no shipped critic: critic-only steps before training (default 500)")
    args = p.parse_args(argv)
    try:
        rule = (PlateauRule(patience=args.patience, min_delta=args.min_delta, warmup=args.warmup)
                if args.until_plateau else None)
    except ValueError as e:
        p.error(str(e))  # exit 2 with the usage line
    if args.max_minutes is not None and not args.max_minutes > 0:
        p.error(f"--max-minutes: expected a positive number, got {args.max_minutes}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.critic_warmup is not None and (args.warm_start is None or args.critic_warmup < 0):
        p.error("--critic-warmup: expected a count >= 0, with --warm-start")
    images, sha = load_train_images(args.dataset)
    config = WGANConfig(iters=args.iters, seed=args.seed, checkpoint_every=args.checkpoint_every,
                        precision=args.precision)
    command = " ".join(["python -m defenses.defensegan.train", *(sys.argv[1:] if argv is None else argv)])
    warm = None
    if args.warm_start == "shipped":
        from defenses.defensegan.lineage import DEFAULT_CRITIC_WARMUP, from_shipped

        warm = from_shipped(args.dataset, critic_warmup=DEFAULT_CRITIC_WARMUP if args.critic_warmup is None
                            else args.critic_warmup)
    _, out = run(args.dataset, images, config=config, resume=args.resume, dataset_sha256=sha, command=command,
                 device=args.device, until_plateau=rule, warm_start=warm,
                 max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes)
    log.info("done: %s", out)


if __name__ == "__main__":
    from bench.errors import run_module

    run_module(main, "python -m defenses.defensegan.train")
