"""One small registry type for attacks, defenses, models, datasets and experiments.

Built-ins and plugins register the same way: by name, either with the object itself or with a lazy
``"module:attribute"`` target that is imported only when the entry is first used. Third-party packages
add entries through Python entry points in the group ``bench.<kind>`` (e.g. ``bench.defenses``); those
are discovered lazily too, so ``bench list`` and ``bench validate`` never import torch-heavy code.

    from bench.registry import DEFENSES
    DEFENSES.register("median", "my_pkg.median:build")      # lazy
    @DEFENSES.register("median2")                           # decorator
    def build(...): ...
"""
from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from typing import Any, Callable, Iterator

from bench.errors import BenchError


class UnknownNameError(BenchError):
    """A name that is not in a registry."""


def import_target(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


class Registry:
    """Name → component, with lazy targets, entry points and "did you mean" errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.entry_point_group = f"bench.{kind}"
        self._entries: dict[str, Any] = {}
        self._lazy: dict[str, str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, target: Any = None) -> Any:
        """Register ``target`` (an object or a ``"module:attr"`` string) under ``name``.

        Without ``target`` this returns a decorator. Re-registering a name replaces it, so a plugin can
        override a built-in deliberately.
        """
        if target is None:
            def decorator(obj: Any) -> Any:
                self.register(name, obj)
                return obj
            return decorator
        self._lazy.pop(name, None)
        self._entries.pop(name, None)
        if isinstance(target, str):
            self._lazy[name] = target
        else:
            self._entries[name] = target
        return target

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.entry_point_group):
            self._lazy.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        """All registered names, sorted, without importing any target."""
        self._load_entry_points()
        return sorted({*self._entries, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def target(self, name: str) -> str:
        """The lazy target string of ``name`` (or a repr of the object), without importing it."""
        self.check(name)
        if name in self._lazy:
            return self._lazy[name]
        obj = self._entries[name]
        if not hasattr(obj, "__qualname__"):  # data entries, e.g. the spec file of an experiment
            return str(obj)
        return f"{obj.__module__}:{obj.__qualname__}"

    def check(self, name: str, *, field: str | None = None) -> str:
        """Return ``name`` if registered, else raise with "did you mean" and the valid names."""
        names = self.names()
        if name in names:
            return name
        close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        where = f"{field}: " if field else ""
        raise UnknownNameError(
            f"{where}unknown {self.kind[:-1] if self.kind.endswith('s') else self.kind} {name!r}.{hint}"
            f" Valid choices: {', '.join(names)}"
        )

    def get(self, name: str) -> Any:
        """The registered object, importing a lazy target on first use."""
        self.check(name)
        if name not in self._entries:
            target = self._lazy[name]
            try:
                self._entries[name] = import_target(target)
            except (ImportError, AttributeError) as err:
                raise BenchError(f"{self.kind} {name!r}: cannot import {target!r}: {err}") from err
        return self._entries[name]


ATTACKS = Registry("attacks")
DEFENSES = Registry("defenses")
MODELS = Registry("models")
DATASETS = Registry("datasets")
EXPERIMENTS = Registry("experiments")
REGISTRIES: dict[str, Registry] = {r.kind: r for r in (ATTACKS, DEFENSES, MODELS, DATASETS, EXPERIMENTS)}


def load_plugin(module: str) -> None:
    """Import a plugin given as a module name or a path to a ``.py`` file; its import registers entries."""
    import importlib.util
    import pathlib
    import sys

    path = pathlib.Path(module)
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise BenchError(f"--plugin: file not found: {module}")
            spec = importlib.util.spec_from_file_location(f"bench_plugin_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            spec.loader.exec_module(mod)
        else:
            importlib.import_module(module)
    except BenchError:
        raise
    except Exception as err:  # a plugin may fail in any way; report it as the user's input
        raise BenchError(f"--plugin {module}: failed to import: {type(err).__name__}: {err}") from err


Factory = Callable[..., Any]
