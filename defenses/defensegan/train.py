"""WGAN-GP training of the Defense-GAN generator, resumable and content-keyed.

Recipe of the released code (``experiments/cfgs/gans/mnist.yml``, ``models/gan.py``): Adam(1e-4, β=(0.5, 0.9))
for generator and critic, gradient penalty λ = 10, 5 critic steps per generator step, batch 50, z ~ N(0, I).

Deviation, on purpose: the gradient-penalty slope is the L2 norm over all of C·H·W per sample (standard
WGAN-GP). The upstream TF code sums squares over axis 1 only, which on NHWC tensors is the H axis.

``precision = "bf16"`` (``--precision bf16``) runs the forward passes under bfloat16 autocast (weights, Adam
and the losses stay fp32): measured here, 1.6x faster per iteration on a CPU with AVX512-BF16 (2.04 s ->
1.28 s on one core). It is part of the run's content key and is stated as a deviation in every report.
A run may also continue a shipped generator (``--warm-start shipped``, :mod:`defenses.defensegan.lineage`).

The content key covers (architecture, data checksum, config without the iteration count, seed), so one
run folder serves every iteration count: a longer request resumes it, a shorter one uses a snapshot. An
empty run folder is first seeded from the training state shipped in ``weights/`` for the same key, when
there is one (``artifacts.shipped_state``), so training goes on across machines that keep no cache.
Run folder: ``$BENCH_CACHE/gan/<dataset>-<key[:12]>/`` (``$BENCH_CACHE`` defaults to ``~/.cache/defense-bench``)::

    state.pt             full state (G, D, both optimisers, RNG, data order, iteration), written atomically
    G-iter<N>.fp16.pt    generator snapshots (fp16 state dicts) for the quality-vs-iterations curve
    meta.json            key, config, data checksum, command
    quality.jsonl        with ``--until-plateau``: Defense-GAN's oblivious FGSM accuracy at each snapshot

``--until-plateau`` stops training once that accuracy levels off (:mod:`defenses.defensegan.plateau`);
``--iters`` remains the upper bound. ``--max-minutes`` stops (with a full checkpoint) once that much wall time
has passed, for runs that must fit a session or an accelerator lease; the next call resumes there, on the
same trajectory.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, get_args

import torch

from bench.cache import cache_root, content_key
from bench.errors import BenchError
from defenses.defensegan.nets import ARCH, Critic, Generator
from defenses.defensegan.plateau import PlateauRule, watch_for

if TYPE_CHECKING:
    from defenses.defensegan.lineage import WarmStart

log = logging.getLogger(__name__)
Precision = Literal["fp32", "bf16"]

DEFAULT_SNAPSHOTS = (250, 500, 1000, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 24000, 32000, 50000, 100000,
                     200000)


@dataclass(frozen=True)
class WGANConfig:
    """Training hyper-parameters; ``iters`` counts generator steps and is not part of the content key."""

    iters: int = 200_000
    batch_size: int = 50
    critic_iters: int = 5
    gp_lambda: float = 10.0
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    latent_dim: int = 128
    dim: int = 64
    seed: int = 0
    checkpoint_every: int = 100
    snapshot_at: tuple[int, ...] = DEFAULT_SNAPSHOTS
    snapshot_every: int = 2000
    precision: Precision = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in get_args(Precision):
            raise ValueError(f"expected precision in {get_args(Precision)}, got {self.precision!r}")

    def keyed(self) -> dict[str, Any]:
        """The fields that change the trained weights at a given iteration (fp32 runs keep their old keys)."""
        d = dataclasses.asdict(self)
        for k in ("iters", "checkpoint_every", "snapshot_at", "snapshot_every"):
            d.pop(k)
        if d["precision"] == "fp32":
            d.pop("precision")
        d["betas"] = list(d["betas"])
        return d


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


def atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def snapshot_path(out_dir: Path, iteration: int) -> Path:
    return Path(out_dir) / f"G-iter{iteration}.fp16.pt"


def list_snapshots(out_dir: Path) -> dict[int, Path]:
    """Iteration -> snapshot file, for every generator snapshot in a run folder."""
    found = {}
    for p in Path(out_dir).glob("G-iter*.fp16.pt"):
        found[int(p.name[len("G-iter"):-len(".fp16.pt")])] = p
    return dict(sorted(found.items()))


def _gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    x_hat = (real + alpha * (fake - real)).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.float().flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def _autocast(device: torch.device, precision: Precision) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _critic_step(gen: Generator, critic: Critic, opt_d: torch.optim.Optimizer, real: torch.Tensor,
                 rng: torch.Generator, config: WGANConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """One WGAN-GP critic update on a real batch (N, 1, 28, 28); returns (critic loss, gradient penalty)."""
    bs, device = len(real), real.device
    with _autocast(device, config.precision):
        with torch.no_grad():
            fake = gen(torch.randn(bs, config.latent_dim, generator=rng).to(device)).float()
        alpha = torch.rand(bs, 1, 1, 1, generator=rng).to(device)
        wdist = critic(real).float().mean() - critic(fake).float().mean()
        gp = _gradient_penalty(critic, real, fake, alpha)
    loss_d = -wdist + config.gp_lambda * gp
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    return loss_d, gp


class _Batches:
    """Epoch-wise shuffled mini-batches drawn with an explicit RNG, so the order survives a resume."""

    def __init__(self, n: int, batch_size: int, rng: torch.Generator) -> None:
        self.n, self.bs, self.rng = n, batch_size, rng
        self.perm, self.pos = torch.randperm(n, generator=rng), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.bs > self.n:  # drop the ragged tail, as the released loader does
            self.perm, self.pos = torch.randperm(self.n, generator=self.rng), 0
        idx = self.perm[self.pos:self.pos + self.bs]
        self.pos += self.bs
        return idx


def _lock(out_dir: Path) -> Any:
    """An exclusive lock on the run folder, so two processes never write the same checkpoint."""
    import fcntl

    handle = open(out_dir / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise BenchError(f"another process is training in {out_dir}; wait for it or stop it") from None
    return handle


def _snapshot_generator(out_dir: Path, config: WGANConfig) -> Generator:
    path = snapshot_path(out_dir, config.iters)
    if not path.exists():
        raise BenchError(f"run {out_dir} is past iteration {config.iters} and has no snapshot there; "
                         f"available: {sorted(list_snapshots(out_dir))}")
    gen = Generator(latent_dim=config.latent_dim, dim=config.dim)
    gen.load_state_dict({k: v.float() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()})
    return gen.eval()


def train_wgan_gp(images: torch.Tensor, *, config: WGANConfig = WGANConfig(), out_dir: str | Path,
                  resume: bool = True, progress: bool = True, meta: dict[str, Any] | None = None,
                  device: str | torch.device = "cpu",
                  on_snapshot: Callable[[int, Generator], bool] | None = None,
                  max_seconds: float | None = None, warm_start: WarmStart | None = None) -> Generator:
    """Train (or resume) a WGAN-GP on ``images`` (N, 1, 28, 28) float in [0, 1]; return G in eval mode.

    ``out_dir`` holds ``state.pt`` (full state every ``config.checkpoint_every`` iterations and at the
    end) and fp16 generator snapshots; a killed run restarts from its last full checkpoint and then
    follows exactly the same trajectory as an uninterrupted one. ``meta`` is written to ``meta.json``.
    ``device`` only moves the computation (random numbers are drawn on the CPU); the returned G is on it.
    ``on_snapshot(iteration, G)`` is called after each snapshot; when it returns True the run checkpoints and
    stops there (``plateau.QualityWatch``). It must leave the RNG alone (the watch forks it).
    ``warm_start``: when the folder holds no state yet, start from that generator (and critic) at its
    iteration instead of from the initialisation (:func:`defenses.defensegan.lineage.apply`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if meta is not None:
        (out_dir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    device = torch.device(device)
    images = images.to(device=device, dtype=torch.float32).contiguous()
    torch.manual_seed(config.seed)  # the initial weights
    gen = Generator(latent_dim=config.latent_dim, dim=config.dim).to(device)
    critic = Critic(dim=config.dim).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=config.betas)
    rng = torch.Generator().manual_seed(config.seed + 1)
    batches = _Batches(len(images), config.batch_size, rng)
    start, warmed = 0, False
    state_file = out_dir / "state.pt"
    lock = _lock(out_dir)  # noqa: F841 -- held until this function returns
    if resume and state_file.exists():
        state = torch.load(state_file, map_location="cpu", weights_only=True)
        if int(state["iteration"]) > config.iters:
            return _snapshot_generator(out_dir, config)
        gen.load_state_dict(state["G"])
        critic.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_G"])
        opt_d.load_state_dict(state["opt_D"])
        rng.set_state(state["rng"])
        batches.perm, batches.pos = state["perm"], int(state["pos"])
        start = int(state["iteration"])
        log.info("resumed %s at iteration %d", out_dir, start)
    elif warm_start is not None:
        from defenses.defensegan.lineage import apply

        start, warmed = apply(warm_start, gen, critic, lambda: _critic_step(
            gen, critic, opt_d, images[batches.next().to(device)], rng, config)), True

    def checkpoint(it: int) -> None:
        atomic_save({"G": gen.state_dict(), "D": critic.state_dict(), "opt_G": opt_g.state_dict(),
                     "opt_D": opt_d.state_dict(), "rng": rng.get_state(), "perm": batches.perm,
                     "pos": batches.pos, "iteration": it, "config": json.dumps(dataclasses.asdict(config))},
                    state_file)

    if warmed:
        checkpoint(start)  # a resume must not warm the critic up again
    bs, zdim = config.batch_size, config.latent_dim
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=config.iters, initial=start, desc=f"wgan-gp {out_dir.name}", mininterval=10,
                   file=sys.stderr, dynamic_ncols=False)
    gen.train()
    critic.train()
    t0, it = time.perf_counter(), start
    for it in range(start + 1, config.iters + 1):
        for _ in range(config.critic_iters):
            loss_d, gp = _critic_step(gen, critic, opt_d, images[batches.next().to(device)], rng, config)
        with _autocast(device, config.precision):
            loss_g = -critic(gen(torch.randn(bs, zdim, generator=rng).to(device))).float().mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if not (torch.isfinite(loss_d) and torch.isfinite(loss_g)):
            raise FloatingPointError(f"non-finite WGAN-GP loss at iteration {it}: D {loss_d}, G {loss_g}")
        every = config.snapshot_every and it % config.snapshot_every == 0
        snap = it in config.snapshot_at or it == config.iters or every
        if snap:
            atomic_save({k: v.half().cpu() for k, v in gen.state_dict().items()}, snapshot_path(out_dir, it))
        stop = bool(snap and on_snapshot is not None and on_snapshot(it, gen))
        if max_seconds is not None and not stop and time.perf_counter() - t0 >= max_seconds:
            log.info("time budget of %.0f s reached at iteration %d; checkpointing", max_seconds, it)
            stop = True
        if it % config.checkpoint_every == 0 or it == config.iters or stop:
            checkpoint(it)
        if bar is not None:
            bar.update(1)
            if it % 10 == 0:
                bar.set_postfix(d=f"{loss_d.item():.3f}", gp=f"{gp.item():.3f}", g=f"{loss_g.item():.3f}",
                                refresh=False)
        if stop:
            break
    if bar is not None:
        bar.close()
    if it > start:
        log.info("trained %d iterations in %.1f s", it - start, time.perf_counter() - t0)
    return gen.eval()


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
            return _snapshot_generator(out, dataclasses.replace(config, iters=last)), out
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
