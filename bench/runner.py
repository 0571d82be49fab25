"""Run the cells of a spec, skipping finished ones, and store one record per cell.

Resume is the store: a cell whose valid record exists is skipped (``force`` recomputes). Each record is
written atomically as soon as its cell finishes, so killing a run loses at most the cells in flight. A
cell that raises an ordinary exception gets a *failed* record (retried next run) and the run goes on; a
:class:`~bench.errors.BenchError` (bad input) stops the run — finished records stay.

Where cells run is the executor's business (:mod:`bench.executors`: in this process, or Ray tasks);
``execute`` is the pure per-cell function they all call, and this driver is the only writer of records.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
import traceback
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from bench.cache import atomic_write_text
from bench.cells import NONE, Cell, expand
from bench.errors import BenchError
from bench.progress import progress
from bench.provenance import git_state, library_versions, machine
from bench.registry import ATTACKS, DEFENSES, import_target
from bench.spec import Spec
from bench.store import Store
from bench.tracks import TRACKS

if TYPE_CHECKING:
    from bench.executors import Executor

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    store: Store
    total: int
    cached: int
    computed: int
    failed: int


def check_components(cells: list[Cell]) -> None:
    """Build every attack once so bad parameters fail (exit 2) before any training or attack work."""
    seen = set()
    for cell in cells:
        signature = (cell.attack, cell.backend, cell.eps, tuple(sorted(cell.attack_params.items())))
        if cell.attack == NONE or signature in seen:
            continue
        seen.add(signature)
        ATTACKS.get(cell.attack)(**({"backend": cell.backend} if cell.backend else {}),
                                 **({"eps": cell.eps} if cell.eps is not None else {}), **cell.attack_params)


def fingerprint_artifacts(cells: Sequence[Cell]) -> list[Cell]:
    """The cells, each with ``artifacts`` = what its defense's factory reports as the identity of the shipped
    files it will load (``factory.fingerprint(dataset=, params=, settings=) -> dict``; optional)."""
    out = []
    for cell in cells:
        fingerprint = None if cell.defense == NONE else getattr(DEFENSES.get(cell.defense), "fingerprint", None)
        found = fingerprint(dataset=cell.dataset, params=cell.defense_params, settings=cell.settings) \
            if fingerprint else None
        out.append(replace(cell, artifacts=dict(found)) if found else cell)
    return out


def _record_head(cell: Cell, device: torch.device | str) -> dict[str, Any]:
    return {
        "key": cell.key, "experiment": cell.experiment, "profile": cell.profile, "config": cell.config,
        "seed": cell.seed, "versions": library_versions(), "git": git_state(),
        "machine": {**machine(), "device": str(device), "torch_threads": torch.get_num_threads()},
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def failed_record(cell: Cell, device: torch.device | str, error: str, *, wall_seconds: float = 0.0) -> dict[str, Any]:
    """The record of a cell that could not finish (an exception, or a worker that kept dying)."""
    return {**_record_head(cell, device), "status": "failed", "error": error, "wall_seconds": wall_seconds}


def execute(cell: Cell, device: torch.device) -> tuple[dict[str, Any], bool]:
    """Evaluate one cell; returns (record, ok). Pure given the cell config and code version."""
    run_cell = import_target(TRACKS[cell.track])
    record = _record_head(cell, device)
    started = time.perf_counter()
    try:
        metrics, per_sample, notes = run_cell(cell, device)
    except BenchError:
        raise
    except Exception as err:  # a failing cell must not take the other cells down; its error is reported
        log.error("cell %s failed: %s: %s", cell.label, type(err).__name__, err)
        record.update(status="failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(),
                      wall_seconds=time.perf_counter() - started)
        return record, False
    record.update(status="ok", metrics=metrics, per_sample=per_sample, notes=notes,
                  wall_seconds=time.perf_counter() - started)
    return record, True


def write_spec_snapshot(store: Store, spec: Spec) -> None:
    """The resolved spec beside the records: reports read titles and paper values from here."""
    try:
        atomic_write_text(store.root / "spec.json", json.dumps(spec.as_dict(), indent=1, sort_keys=True, default=str))
    except OSError as err:  # checked before any work, so an unwritable folder costs nothing
        raise BenchError(f"--out: cannot write results to {store.root}: {err.strerror or err}") from err


def check_code_version(store: Store, *, allow_mixed: bool = False) -> None:
    """Refuse to add records of this code version to a table holding records of another git commit."""
    commit = git_state().get("commit")
    other = {c: k for c, k in store.commits().items() if c != commit}
    if other and not allow_mixed:
        found = ", ".join(f"{str(c)[:12]} ({k} records)" for c, k in sorted(other.items(), key=str))
        raise BenchError(f"--allow-mixed: {store.root} holds records from other code versions ({found}); this code "
                         f"is {str(commit)[:12]}. Use --force to recompute them, another --out, or --allow-mixed")


def run(spec: Spec, *, out: Path, device: torch.device | str, force: bool = False,
        executor: "Executor | None" = None, allow_mixed: bool = False) -> RunSummary:
    """Run every unfinished cell of ``spec`` on ``executor`` (default: this process, one after another)."""
    store = Store.for_experiment(out, spec.key, spec.profile)
    cells = fingerprint_artifacts(expand(spec))
    check_components(cells)
    if not force:
        check_code_version(store, allow_mixed=allow_mixed)
    write_spec_snapshot(store, spec)
    return run_cells(cells, store=store, device=device, force=force, executor=executor, desc=f"{spec.key} cells")


def run_cells(cells: Sequence[Cell], *, store: Store, device: torch.device | str, force: bool = False,
              executor: "Executor | None" = None, desc: str = "cells") -> RunSummary:
    """Compute the cells without a valid record in ``store``; this driver writes every record itself."""
    from bench.executors import LocalExecutor

    executor = executor or LocalExecutor()
    todo = [c for c in cells if force or not store.has(c.key)]
    log.info("%s: %d cells, %d already stored, %d to compute on %s", desc, len(cells), len(cells) - len(todo),
             len(todo), executor)
    failed = 0
    with progress(total=len(todo), desc=desc, unit="cell", leave=True) as bar, \
            closing(executor.map(todo, device)) as results:
        for cell, record, ok in results:
            store.write(record, failed=not ok)
            failed += not ok
            bar.update(1)
    return RunSummary(store=store, total=len(cells), cached=len(cells) - len(todo), computed=len(todo) - failed,
                      failed=failed)
