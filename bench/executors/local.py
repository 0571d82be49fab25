"""The local executor: every cell in this process, one after another, in the order given."""
from __future__ import annotations

import logging
from typing import Iterator, Sequence

import torch

from bench.cells import Cell
from bench.device import DEVICES, resolve_device

log = logging.getLogger(__name__)


class LocalExecutor:
    """Runs cells in-process. ``threads`` sets torch's intra-op thread count (None: torch's default)."""

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads

    def __repr__(self) -> str:
        return f"LocalExecutor(threads={self.threads or torch.get_num_threads()})"

    def map(self, cells: Sequence[Cell], device: torch.device | str) -> Iterator[tuple[Cell, dict, bool]]:
        from bench.runner import execute

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        device = resolve_device(device) if isinstance(device, str) and device in DEVICES else torch.device(device)
        for cell in cells:
            log.info("cell %s", cell.label)
            record, ok = execute(cell, device)
            yield cell, record, ok

    def close(self) -> None:
        pass
