"""Shared artifacts: what several cells need and only one should train (a classifier, later a GAN).

Each track declares ``artifacts_for(cell) -> list[ArtifactSpec]`` in ``TRACK_ARTIFACTS``. An executor
that runs cells in parallel builds each distinct artifact once, as a task the cells depend on, instead of
letting concurrent cells race to train the same thing. An artifact is files under the cache root
(:func:`bench.cache.cache_root`); the build task returns their bytes so that cells on another machine get
the very same files (``install``), checked against their SHA-256 before they are used.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.cache import atomic_write_bytes, cache_root, content_key
from bench.cells import Cell
from bench.registry import import_target

log = logging.getLogger(__name__)
TRACK_ARTIFACTS = {"classifier": "bench.executors.artifacts:classifier_artifacts"}


@dataclass(frozen=True)
class ArtifactSpec:
    """One artifact: cells with equal ``key`` share it; ``build`` (``"module:attr"``) is called as
    ``build(cell, device) -> list[Path]`` and returns the files it made (or found) under the cache root."""

    key: str
    label: str
    build: str
    cell: Cell


def artifacts_for(cell: Cell) -> list[ArtifactSpec]:
    """The artifacts ``cell`` needs before it can run (none for a track that declares nothing)."""
    target = TRACK_ARTIFACTS.get(cell.track)
    return import_target(target)(cell) if target else []


def classifier_artifacts(cell: Cell) -> list[ArtifactSpec]:
    """The classifier-track cell's base classifier: one per (model, dataset, train config, seed)."""
    key = content_key({"classifier": cell.model, "dataset": cell.dataset, "train": cell.train, "seed": cell.spec_seed})
    return [ArtifactSpec(key=key, label=f"classifier {cell.model}/{cell.dataset}",
                         build="bench.executors.artifacts:build_classifier", cell=cell)]


def build_classifier(cell: Cell, device: torch.device) -> list[Path]:
    from bench.tracks.classifier import _classifier

    checkpoint = Path(_classifier(cell, device).bench_checkpoint)
    return [checkpoint, checkpoint.with_suffix(".json")]  # the sidecar last: it vouches for the checkpoint


def build(artifact: ArtifactSpec, device: torch.device) -> dict[str, bytes]:
    """Build (or load from the cache) ``artifact``; returns its files as {path relative to cache root: bytes}."""
    root = cache_root().resolve()
    files = import_target(artifact.build)(artifact.cell, device)
    return {str(Path(f).resolve().relative_to(root)): Path(f).read_bytes() for f in files}


def install(files: dict[str, bytes]) -> None:
    """Put artifact files under this machine's cache root, rewriting only those that differ (atomically)."""
    root = cache_root()
    for name, data in files.items():
        path = root / name
        if path.exists() and hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest():
            continue
        log.info("installing artifact file %s (%d bytes)", path, len(data))
        atomic_write_bytes(path, data)

