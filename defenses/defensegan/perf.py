"""How fast is the Defense-GAN projection, and how close to the machine's ceiling?

One process, same images, four timings:

a. ``reference``: :func:`~defenses.defensegan.reference.reference_project`, one image and one restart
   at a time (a few images only: it is slow);
b. ``batched``: :class:`~defenses.defensegan.purifier.DefenseGANPurifier` on all images;
c. ``raw``: L forward+backward passes of the generator on one batch of B·R latents (no optimiser, no
   restart selection) — the cost floor of the algorithm on this implementation of G;
d. ``ceiling``: a large fp32 matmul, the machine's practical GFLOP/s.

FLOP count (analytic): forward = 2·MACs per latent; backward = another 2·MACs, because the generator
is frozen so autograd computes input/activation gradients only (no weight gradients; with weight
gradients it would be 2× the forward). One projection step therefore costs 4·MACs per latent, and an
image costs R·(L·4 + 2)·MACs (the final forward included).
"""
from __future__ import annotations

import json as jsonlib
import time
from typing import Any

import torch
from torch import nn

from defenses.defensegan.purifier import DefenseGANPurifier
from defenses.defensegan.reference import reference_project


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Practical fp32 GFLOP/s of an n×n matmul (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def raw_passes(generator: nn.Module, n_latents: int, L: int) -> float:
    """Seconds for L forward+backward (w.r.t. z) passes of G on n_latents latents."""
    z = torch.randn(n_latents, generator.latent_dim, requires_grad=True)

    def run() -> None:
        for _ in range(L):
            out = generator(z)
            torch.autograd.grad(out, z, grad_outputs=out)

    return _timed(run)


def run_purify_benchmark(generator: nn.Module, images: torch.Tensor, *, L: int = 200, R: int = 10,
                         reference_images: int = 2, max_batch: int = 1000, ceiling_n: int = 2048,
                         json: bool = False) -> dict[str, Any] | str:
    """Time a–d above on ``images`` (N, 1, 28, 28) in [0, 1]; return the figures (a JSON string if ``json``)."""
    generator = generator.eval().requires_grad_(False)
    n = len(images)
    macs = generator.macs_per_sample()
    flop_per_image = R * (L * 4 + 2) * macs
    torch.manual_seed(0)
    t_ref = _timed(lambda: reference_project(generator, images[:reference_images], L=L, R=R))
    purifier = DefenseGANPurifier(generator, L=L, R=R, max_batch=max_batch)
    purifier.purify(images[:1])  # warm-up (allocator, kernels)
    t_batched = _timed(lambda: purifier.purify(images))
    t_raw = raw_passes(generator, min(n * R, max_batch), L) * max(1.0, n * R / max_batch)
    ceiling = matmul_gflops(ceiling_n)
    batched_gflops = n * flop_per_image / t_batched / 1e9
    raw_gflops = n * R * L * 4 * macs / t_raw / 1e9
    out = {
        "L": L, "R": R, "images": n, "reference_images": reference_images, "max_batch": max_batch,
        "threads": torch.get_num_threads(), "generator_macs_per_latent": macs,
        "gflop_per_image": flop_per_image / 1e9,
        "reference_images_per_s": reference_images / t_ref,
        "batched_images_per_s": n / t_batched,
        "raw_images_per_s": n / t_raw,
        "batched_gflops": batched_gflops, "raw_gflops": raw_gflops, "ceiling_gflops": ceiling,
        "batched_over_reference": (n / t_batched) / (reference_images / t_ref),
        "raw_over_batched": t_batched / t_raw,
        "batched_over_ceiling": batched_gflops / ceiling,
    }
    return jsonlib.dumps(out, indent=2) if json else out


def main(argv: list[str] | None = None) -> int:
    """``bench perf purify``: the four timings above on test images, printed (and as one JSON line)."""
    import argparse

    from bench import data
    from defenses.defensegan.artifacts import load_artifact
    from defenses.defensegan.nets import Generator

    parser = argparse.ArgumentParser(prog="bench perf purify", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", help="mnist | fashion-mnist (default mnist)")
    parser.add_argument("--images", type=int, default=20, help="test images for b and c (default 20)")
    parser.add_argument("--reference-images", type=int, default=2, help="images for the slow loop a (default 2)")
    parser.add_argument("--L", type=int, default=200, help="gradient steps per restart (default 200)")
    parser.add_argument("--R", type=int, default=10, help="random restarts (default 10)")
    parser.add_argument("--max-batch", type=int, default=1000, help="latents per chunk (default 1000)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    from bench.errors import BenchError
    for name in ("images", "reference_images", "L", "R", "max_batch"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {getattr(args, name)}")
    try:
        generator, provenance = load_artifact(args.dataset)
        source = f"shipped generator ({provenance.get('iterations')} iterations)"
    except BenchError:
        torch.manual_seed(0)
        generator, source = Generator(), "untrained generator (same architecture and cost)"
    images = data.load(args.dataset, "test").x[:args.images]
    result = run_purify_benchmark(generator, images, L=args.L, R=args.R, reference_images=args.reference_images,
                                  max_batch=args.max_batch)
    assert isinstance(result, dict)
    print(f"{source}; L={args.L}, R={args.R}, {result['images']} images, {result['threads']} threads")
    print(f"a reference loop  {result['reference_images_per_s']:9.4f} images/s")
    print(f"b batched         {result['batched_images_per_s']:9.4f} images/s  {result['batched_gflops']:7.1f} GFLOP/s")
    print(f"c raw L x R passes {result['raw_images_per_s']:8.4f} images/s  {result['raw_gflops']:7.1f} GFLOP/s")
    print(f"d fp32 matmul                        {result['ceiling_gflops']:7.1f} GFLOP/s")
    print(f"b/a = {result['batched_over_reference']:.1f}x   c/b (time b / time c) = {result['raw_over_batched']:.2f}"
          f"   b/d = {result['batched_over_ceiling']:.0%}")
    if args.json:
        print(jsonlib.dumps(result, sort_keys=True))
    return 0
