"""Executors: where the cells of a run are computed. The driver (:func:`bench.runner.run_cells`) stays the
only writer of records; an executor only turns cells into ``(cell, record, ok)`` results, in any order.

    local   this process, one cell after another (the default)
    ray     Ray tasks on a local Ray started on demand (``workers``) or an existing cluster (``address``);
            needs the optional extra: ``pip install "defense-bench[ray]"``

Both call :func:`bench.runner.execute` on each cell, so the same spec gives the same records either way
(given the same per-process torch thread count: float reductions in torch's CPU kernels depend on it).
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence

import torch

from bench.cells import Cell
from bench.errors import BenchError
from bench.registry import import_target

EXECUTORS = {"local": "bench.executors.local:LocalExecutor", "ray": "bench.executors.ray_executor:RayExecutor"}
Result = tuple[Cell, dict[str, Any], bool]


class Executor(Protocol):
    def map(self, cells: Sequence[Cell], device: torch.device | str) -> Iterator[Result]:
        """Compute ``cells`` on ``device`` (a torch device, or ``auto``/``cpu``/``cuda`` resolved where each
        cell runs); yield each ``(cell, record, ok)`` as it finishes. Raises BenchError on bad input."""

    def close(self) -> None:
        """Release what the executor started (a local Ray, worker processes)."""


def make_executor(name: str, *, address: str | None = None, workers: int | None = None,
                  threads: int | None = None, plugins: Sequence[str] = ()) -> Executor:
    """The executor ``name`` (``local`` | ``ray``); every option is checked here (exit 2 on bad values)."""
    if name not in EXECUTORS:
        raise BenchError(f"--executor: unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")
    for field, value in (("--workers", workers), ("--threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise BenchError(f"{field}: expected an integer >= 1, got {value!r}")
    if name == "local":
        if address is not None or workers is not None:
            raise BenchError(f"{'--address' if address is not None else '--workers'}: only used with --executor ray")
        return import_target(EXECUTORS[name])(threads=threads)
    if address is not None and workers is not None:
        raise BenchError("--workers: only for a local Ray started on demand; with --address the cluster's "
                         "resources decide how many cells run at once")
    return import_target(EXECUTORS[name])(address=address, workers=workers, threads=threads, plugins=tuple(plugins))


def __getattr__(name: str) -> Any:  # `from bench.executors import LocalExecutor` without importing ray
    if name == "LocalExecutor":
        return import_target(EXECUTORS["local"])
    raise AttributeError(name)
