"""Datasets: MNIST and Fashion-MNIST, fetched once into a verified cache, loaded as float tensors.

    from bench.data import load, fetch
    fetch("mnist")                      # once; `bench data fetch mnist` on the command line
    test = load("mnist", "test")        # Split: x float32 (10000, 1, 28, 28) in [0, 1], y int64 (10000,)

Importing this package is cheap (no torch, no numpy); :mod:`bench.data.api` does the work.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.split import Split

if TYPE_CHECKING:
    from bench.data.catalog import DatasetInfo

# Entries for bench.registry.DATASETS: name -> lazy "module:attr" of the DatasetInfo.
BUILTIN: dict[str, str] = {
    "mnist": "bench.data.catalog:MNIST",
    "fashion-mnist": "bench.data.catalog:FASHION_MNIST",
}
SPLITS = ("train", "val", "test")

__all__ = ["BUILTIN", "SPLITS", "Split", "fetch", "fetch_summary", "info", "load"]


def load(name: str, split: str, *, root: Path | None = None) -> Split:
    """See :func:`bench.data.api.load`."""
    from bench.data.api import load as _load

    return _load(name, split, root=root)


def fetch(name: str, *, from_dir: Path | None = None, source: str | None = None,
          root: Path | None = None, force: bool = False) -> Path:
    """See :func:`bench.data.api.fetch`."""
    from bench.data.api import fetch as _fetch

    return _fetch(name, from_dir=from_dir, source=source, root=root, force=force)


def fetch_summary(name: str, *, from_dir: Path | None = None, source: str | None = None,
                  root: Path | None = None, force: bool = False) -> str:
    """See :func:`bench.data.api.fetch_summary`; what `bench data fetch` prints."""
    from bench.data.api import fetch_summary as _fetch_summary

    return _fetch_summary(name, from_dir=from_dir, source=source, root=root, force=force)


def info(name: str) -> "DatasetInfo":
    """The catalog entry (shape, classes, checksums, sources) of ``name``."""
    from bench.data.catalog import get_info

    return get_info(name)
