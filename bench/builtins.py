"""Registration of the built-in components (lazily: only "module:attr" strings, no torch import).

Each component package owns a ``BUILTIN`` table of name → target; this module feeds them into the
registries once. Third-party packages use entry points (``bench.attacks``, ``bench.defenses``, …) instead.
"""
from __future__ import annotations

import importlib

from bench.registry import ATTACKS, DATASETS, DEFENSES, EXPERIMENTS, MODELS
from bench.spec import EXPERIMENTS_DIR

_TABLES = (
    (ATTACKS, "attacks", "BUILTIN"),
    (DEFENSES, "defenses", "BUILTIN"),
    (MODELS, "bench.models", "BUILTIN"),
    (MODELS, "bench.faces.models", "BUILTIN"),
    (DATASETS, "bench.data", "BUILTIN"),
    (DATASETS, "bench.faces", "BUILTIN_DATASETS"),
)
_done = False


def register_builtins() -> None:
    """Register every built-in once (idempotent; later registrations by plugins are not overwritten)."""
    global _done
    if _done:
        return
    _done = True
    for registry, module, attr in _TABLES:
        table = getattr(importlib.import_module(module), attr, {})
        for name, target in table.items():
            if name not in registry._lazy and name not in registry._entries:
                registry.register(name, target)
    for path in sorted(EXPERIMENTS_DIR.glob("*.toml")):
        if path.stem not in EXPERIMENTS._entries:
            EXPERIMENTS.register(path.stem, path)
