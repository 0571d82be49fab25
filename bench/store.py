"""The result store: one JSON record per finished cell, written atomically, checked on read.

Layout: ``<out>/<experiment>/<profile>/cells/<key>.json`` (finished), ``…/failed/<key>.json`` (the last
error of a cell that raised; it is retried on the next run). Each record carries a SHA-256 of its own
content, so a truncated or edited record is detected, reported and recomputed instead of trusted.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterator

from bench.cache import atomic_write_text, canonical_json
from bench.errors import BenchError

log = logging.getLogger(__name__)
SCHEMA = 1


def _checksum(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


class Store:
    """Records of one experiment and profile under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / "cells"
        self.failed_dir = self.root / "failed"

    @classmethod
    def for_experiment(cls, out: Path, experiment: str, profile: str) -> "Store":
        return cls(Path(out) / experiment / profile)

    def path(self, key: str) -> Path:
        return self.cells_dir / f"{key}.json"

    def load(self, path: Path) -> dict[str, Any] | None:
        """The record at ``path``, or None (with a warning) when it is unreadable or fails its checksum."""
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            log.warning("corrupt record %s (%s); it will be recomputed", path, err)
            return None
        if not isinstance(record, dict) or record.get("checksum") != _checksum(record):
            log.warning("record %s fails its checksum; it will be recomputed", path)
            return None
        return record

    def has(self, key: str) -> bool:
        path = self.path(key)
        return path.exists() and self.load(path) is not None

    def write(self, record: dict[str, Any], *, failed: bool = False) -> Path:
        record = {**record, "schema": SCHEMA}
        record["checksum"] = _checksum(record)
        path = (self.failed_dir if failed else self.cells_dir) / f"{record['key']}.json"
        try:
            atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True))
        except OSError as err:
            raise BenchError(f"cannot write results to {path.parent}: {err.strerror or err}") from err
        if not failed:
            (self.failed_dir / f"{record['key']}.json").unlink(missing_ok=True)
        return path

    def records(self) -> Iterator[dict[str, Any]]:
        """Valid finished records, sorted by key (corrupt ones are skipped with a warning)."""
        for path in sorted(self.cells_dir.glob("*.json")):
            record = self.load(path)
            if record is not None:
                yield record

    def commits(self) -> dict[str | None, int]:
        """Git commit → number of valid finished records made by that code version."""
        counts: dict[str | None, int] = {}
        for record in self.records():
            commit = (record.get("git") or {}).get("commit")
            counts[commit] = counts.get(commit, 0) + 1
        return counts

    def failures(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.failed_dir.glob("*.json")):
            record = self.load(path)
            if record is not None and not self.path(record["key"]).exists():
                yield record
