"""Run the cells of a spec, skipping finished ones, and store one record per cell.

Resume is the store: a cell whose valid record exists is skipped (``force`` recomputes). Each record is
written atomically as soon as its cell finishes, so killing a run loses at most the cell in flight. A
cell that raises an ordinary exception gets a *failed* record (retried next run) and the run goes on; a
:class:`~bench.errors.BenchError` (bad input) stops the run — finished records stay.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.cache import atomic_write_text
from bench.cells import NONE, Cell, expand
from bench.errors import BenchError
from bench.progress import progress
from bench.provenance import git_state, library_versions, machine
from bench.registry import ATTACKS, import_target
from bench.spec import Spec
from bench.store import Store
from bench.tracks import TRACKS

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


def execute(cell: Cell, device: torch.device) -> tuple[dict[str, Any], bool]:
    """Evaluate one cell; returns (record, ok). Pure given the cell config and code version."""
    run_cell = import_target(TRACKS[cell.track])
    record: dict[str, Any] = {
        "key": cell.key, "experiment": cell.experiment, "profile": cell.profile, "config": cell.config,
        "seed": cell.seed, "versions": library_versions(), "git": git_state(),
        "machine": {**machine(), "device": str(device), "torch_threads": torch.get_num_threads()},
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
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
    atomic_write_text(store.root / "spec.json", json.dumps(spec.as_dict(), indent=1, sort_keys=True, default=str))


def run(spec: Spec, *, out: Path, device: torch.device, force: bool = False) -> RunSummary:
    """Run every unfinished cell of ``spec`` in this process, one after another."""
    store = Store.for_experiment(out, spec.key, spec.profile)
    cells = expand(spec)
    check_components(cells)
    write_spec_snapshot(store, spec)
    todo = [c for c in cells if force or not store.has(c.key)]
    log.info("%s/%s: %d cells, %d already stored, %d to compute", spec.key, spec.profile, len(cells),
             len(cells) - len(todo), len(todo))
    failed = 0
    with progress(total=len(todo), desc=f"{spec.key} cells", unit="cell", leave=True) as bar:
        for cell in todo:
            log.info("cell %s", cell.label)
            record, ok = execute(cell, device)
            store.write(record, failed=not ok)
            failed += not ok
            bar.update(1)
    return RunSummary(store=store, total=len(cells), cached=len(cells) - len(todo), computed=len(todo) - failed,
                      failed=failed)
