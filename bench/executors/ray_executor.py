"""The Ray executor: one Ray task per cell, one per shared artifact, on a local Ray or an existing cluster.

``ray`` is imported only here (``--executor ray``). Cells that need an artifact (their classifier) are
submitted with the artifact task's ObjectRef as an argument, so Ray schedules them after it, and the
artifact's files travel with it. A worker that dies mid-task is retried (``max_retries``); a cell that
still cannot finish comes back as a failed record with the error, and the other cells go on. Records
are written by the driver only (:func:`bench.runner.run_cells`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from bench.cells import Cell
from bench.device import DEVICES
from bench.errors import BenchError
from bench.executors import tasks
from bench.executors.artifacts import artifacts_for

log = logging.getLogger(__name__)
_FORWARDED = ("BENCH_CACHE", "BENCH_DATA", "BENCH_PROGRESS", "GIT_PYTHON_REFRESH")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BenchError('--executor ray: Ray is not installed; pip install "defense-bench[ray]"') from None
    return ray


def _worker_env() -> dict[str, str]:
    """Environment for worker processes: the driver's cache/data folders, and this checkout on the path
    when the code runs from a source tree rather than an installed package."""
    env = {name: os.environ[name] for name in _FORWARDED if name in os.environ}
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    source = Path(__file__).resolve().parents[2]
    if (source / "pyproject.toml").is_file():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(source), os.environ.get("PYTHONPATH", "")) if p)
    return env


def _describe(err: Exception) -> str:
    inner = getattr(err, "cause", None) or err
    lines = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {lines[0] if lines else ''}".strip()


class RayExecutor:
    """Cells as Ray tasks of ``threads`` CPUs each (torch uses that many threads in the task).

    ``address``: an existing cluster (``auto`` or ``HOST:PORT``). Without it a local Ray is started on
    demand with ``workers`` × ``threads`` CPUs (default: all cores) and shut down by :meth:`close`. If
    Ray is already initialised in this process it is used as it is.
    """

    def __init__(self, *, address: str | None = None, workers: int | None = None, threads: int | None = None,
                 plugins: Sequence[str] = (), max_retries: int = 2) -> None:
        ray = _ray()
        self.threads = threads or 1
        self.plugins = tuple(str(Path(p).resolve()) if p.endswith(".py") else p for p in plugins)
        self.max_retries = max_retries
        self.runtime_env = {"env_vars": _worker_env()}
        self._started = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
            if address is None:
                options.update(num_cpus=(workers or os.cpu_count() or 1) * self.threads,
                               object_store_memory=512 * 1024 ** 2)
            try:
                ray.init(address=address, **options)
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise BenchError(f"--address: cannot start or reach Ray at {address or 'a new local cluster'}: "
                                 f"{str(err).strip().splitlines()[0]}") from None
            self._started = True
        self._artifact_fn = ray.remote(tasks.artifact_task)
        self._cell_fn = ray.remote(tasks.cell_task)

    def __repr__(self) -> str:
        cpus = int(_ray().cluster_resources().get("CPU", 0))
        return f"RayExecutor(cluster CPUs={cpus}, threads per cell={self.threads})"

    def _gpus(self, device: str) -> int:
        has_gpu = _ray().cluster_resources().get("GPU", 0) > 0
        if device == "cuda" and not has_gpu:
            raise BenchError("--device cuda: the Ray cluster has no GPU; use --device auto or cpu")
        return int(has_gpu and device in ("cuda", "auto"))

    def map(self, cells: Sequence[Cell], device: torch.device | str) -> Iterator[tuple[Cell, dict, bool]]:
        from bench.runner import failed_record

        ray = _ray()
        name = device if isinstance(device, str) else torch.device(device).type
        if name not in DEVICES:
            raise BenchError(f"--device: expected one of {', '.join(DEVICES)}, got {name!r}")
        options = {"num_cpus": self.threads, "num_gpus": self._gpus(name), "max_retries": self.max_retries,
                   "runtime_env": self.runtime_env}
        artifact_fn, cell_fn = self._artifact_fn.options(**options), self._cell_fn.options(**options)
        args = (name, self.threads, self.plugins)
        built: dict[str, Any] = {}
        cell_of: dict[Any, Cell] = {}
        for cell in cells:
            deps = []
            for artifact in artifacts_for(cell):
                if artifact.key not in built:  # each shared artifact is built once; its cells wait for it
                    built[artifact.key] = artifact_fn.remote(artifact, *args)
                deps.append(built[artifact.key])
            cell_of[cell_fn.remote(cell, *args, *deps)] = cell
        log.info("submitted %d cells and %d artifact builds to Ray", len(cell_of), len(built))
        pending = list(cell_of)
        try:
            while pending:
                [ref], pending = ray.wait(pending, num_returns=1)
                cell = cell_of[ref]
                try:
                    kind, payload = ray.get(ref)
                except ray.exceptions.RayError as err:  # retries exhausted, or its artifact failed
                    log.error("cell %s failed on Ray: %s", cell.label, _describe(err))
                    yield cell, failed_record(cell, name, _describe(err)), False
                    continue
                if kind == "bench_error":
                    raise BenchError(payload)
                record, ok = payload
                yield cell, record, ok
        finally:
            for ref in [*pending, *built.values()]:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            _ray().shutdown()
            self._started = False
