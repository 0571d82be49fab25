"""``bench perf executor``: the same small grid on the local executor and on Ray, wall time and speedup.

Both sides run with the same torch thread count per cell (``--threads``, default 1) and a warm classifier
cache (trained once beforehand), so the figure compares executors, not training or thread settings. Ray's
start-up (and its workers' first imports) is measured separately and left out of the speedup: it is paid
once per run, not per cell. The records of both sides are compared too.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path



def grid(*, n: int, model: str) -> dict:
    """Eight attack cells of one model: FGSM and RAND+FGSM at four ε each (spec data, validated later)."""
    eps = [0.1, 0.15, 0.2, 0.3]
    return {"key": "perf-executor", "title": "executor benchmark", "dataset": "mnist", "models": [model], "n": n,
            "batch_size": 100, "seed": 0, "defenses": ["none"],
            "attacks": [{"key": "fgsm", "eps": eps, "backends": ["torchattacks"]},
                        {"key": "rand-fgsm", "eps": eps, "alpha": 0.05}],
            "train": {"epochs": 1, "train_images": 2000}}


def _warm_up(ray: object, executor: object, workers: int, threads: int) -> None:
    """Start every worker and import torch and the attacks there (what a long run pays once)."""
    def _imports(seconds: float) -> int:
        import bench.tracks.classifier  # noqa: F401
        from bench import data
        from bench.executors.tasks import prepare_worker
        prepare_worker(threads, ())
        data.load("mnist", "test")
        time.sleep(seconds)  # keeps each worker busy so that the next warm-up task lands on another one
        return os.getpid()

    remote = ray.remote(_imports).options(num_cpus=threads, runtime_env=executor.runtime_env)  # the same workers
    ray.get([remote.remote(1.0) for _ in range(workers)])


def measure(*, n: int, model: str, workers: int, threads: int, out: Path) -> dict:
    import ray
    import torch

    from bench.cells import expand
    from bench.executors import make_executor
    from bench.spec import resolve
    from bench.store import Store
    from bench.runner import run_cells

    spec = resolve(grid(n=n, model=model), profile="quick")
    cells = expand(spec)
    local = make_executor("local", threads=threads)
    list(local.map(cells[:1], "cpu"))  # trains the classifier into the cache; excluded from both timings
    started = time.perf_counter()
    run_cells(cells, store=Store(out / "local"), device="cpu", executor=local)
    local_s = time.perf_counter() - started

    started = time.perf_counter()
    executor = make_executor("ray", workers=workers, threads=threads)
    _warm_up(ray, executor, workers, threads)
    startup_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        run_cells(cells, store=Store(out / "ray"), device="cpu", executor=executor)
        ray_s = time.perf_counter() - started
    finally:
        executor.close()
    same = _comparable(Store(out / "local")) == _comparable(Store(out / "ray"))
    return {"cells": len(cells), "n": n, "model": model, "workers": workers, "threads": threads,
            "cores": os.cpu_count(), "torch": torch.__version__, "local_s": round(local_s, 2),
            "ray_s": round(ray_s, 2), "ray_startup_s": round(startup_s, 2), "speedup": round(local_s / ray_s, 2),
            "local_cells_per_s": round(len(cells) / local_s, 3), "ray_cells_per_s": round(len(cells) / ray_s, 3),
            "records_identical": same}


def _comparable(store: object) -> dict:
    return {r["key"]: (r["metrics"], r["per_sample"]) for r in store.records()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench perf executor", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="test images per cell (default 2000)")
    parser.add_argument("--model", default="A", help="classifier architecture (default A)")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per cell, both sides (default 1)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line: local_s, ray_s, speedup, …")
    args = parser.parse_args(argv)
    from bench.errors import BenchError
    if args.n < 1:
        raise BenchError(f"--n: expected an integer >= 1, got {args.n}")
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as tmp:
        os.environ.setdefault("BENCH_CACHE", str(Path(tmp) / "cache"))  # Ray workers inherit it
        result = measure(n=args.n, model=args.model, workers=args.workers, threads=args.threads, out=Path(tmp))
    print(f"{result['cells']} cells of model {result['model']}, n={result['n']}, {result['threads']} thread(s) "
          f"per cell, {result['cores']} cores")
    print(f"local  {result['local_s']:8.2f} s  {result['local_cells_per_s']:.3f} cells/s")
    print(f"ray    {result['ray_s']:8.2f} s  {result['ray_cells_per_s']:.3f} cells/s  ({result['workers']} workers; "
          f"start-up {result['ray_startup_s']:.1f} s not included)")
    print(f"speedup {result['speedup']:.2f}x; records identical: {'yes' if result['records_identical'] else 'NO'}")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0
