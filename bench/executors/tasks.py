"""The two kinds of task a Ray worker runs: build a shared artifact, evaluate a cell.

Plain functions (this module never imports ray), so they are testable in-process. Both return
``(kind, payload)``: ``("ok", value)`` or ``("bench_error", message)``; a user-input error is sent back
as a message so the driver can stop the run with that one line (exit 2), not a remote traceback. Other
exceptions in an artifact build propagate: Ray then fails the cells that depend on it, and the driver
records them as failed with that error.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from bench.cells import Cell
from bench.errors import BenchError
from bench.executors.artifacts import ArtifactSpec, build, install

_LOADED_PLUGINS: set[str] = set()


def prepare_worker(threads: int, plugins: Sequence[str]) -> None:
    """Per-process setup: torch threads (so workers don't oversubscribe cores), built-ins, plugins."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("BENCH_PROGRESS", "0")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    from bench.builtins import register_builtins
    from bench.registry import load_plugin

    register_builtins()
    for plugin in plugins:  # the driver's --plugin list: a worker knows the same components
        if plugin not in _LOADED_PLUGINS:
            load_plugin(plugin)
            _LOADED_PLUGINS.add(plugin)


def artifact_task(artifact: ArtifactSpec, device: str, threads: int, plugins: Sequence[str]) -> tuple[str, Any]:
    """Build ``artifact`` here; payload: its files, {path under the cache root: bytes}."""
    from bench.device import resolve_device

    try:
        prepare_worker(threads, plugins)
        return "ok", build(artifact, resolve_device(device))
    except BenchError as err:
        return "bench_error", str(err)


def cell_task(cell: Cell, device: str, threads: int, plugins: Sequence[str], *artifacts: tuple[str, Any]) -> tuple[str, Any]:
    """Install the cell's artifacts (results of :func:`artifact_task`), then evaluate it; payload: (record, ok)."""
    from bench.device import resolve_device
    from bench.runner import execute

    for kind, payload in artifacts:
        if kind == "bench_error":
            return kind, payload
    try:
        prepare_worker(threads, plugins)
        for _, files in artifacts:
            install(files)
        return "ok", execute(cell, resolve_device(device))
    except BenchError as err:
        return "bench_error", str(err)
