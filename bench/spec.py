"""Experiment specs: TOML files that name components by registry key, validated into one frozen object.

A spec may inherit another (``base = "key"``), and carries ``[profiles.<name>]`` tables that are deep-merged
over its top level when that profile is chosen. Precedence: CLI overrides > profile > spec file > base.
Validation never imports torch: it checks structure, types, registry names and the generic attack
parameters; each component checks its own parameters again when the runner builds it (before any work).

Top-level keys (see ``bench/experiments/*.toml``):

    key, title, paper_source, track ("classifier" | "faces"), dataset, models, defenses, attacks, threats,
    label_mode ("true" | "predicted"), n, n_defended, seed, batch_size, eot, train, settings, profiles, paper,
    base, notes
"""
from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from bench.errors import BenchError, SpecError

EXPERIMENTS_DIR = Path(__file__).parent / "experiments"
BASES_DIR = EXPERIMENTS_DIR / "bases"  # shared settings that specs inherit (``base = "defensegan"``); not runnable
PROFILES = ("smoke", "quick", "paper")
THREATS = ("oblivious", "unrolled", "bpda")
TRACKS = ("classifier", "faces")
LABEL_MODES = ("true", "predicted")
_TOP_KEYS = {"key", "title", "paper_source", "track", "dataset", "models", "defenses", "attacks", "threats",
             "label_mode", "n", "seed", "batch_size", "eot", "train", "settings", "profiles", "paper", "base",
             "notes", "plots", "n_defended"}
_TRAIN_KEYS = {"epochs", "batch_size", "lr", "train_images", "dropout"}
_ENTRY_KEYS = {"attacks": {"key", "backend", "backends", "eps", "label", "targeted", "threats"},
               "defenses": {"key", "label", "threats", "params"}}
_PAPER_KEYS = {"model", "attack", "defense", "threat", "metric", "eps", "value", "source", "status", "yaw"}


@dataclass(frozen=True)
class Spec:
    """A validated, fully resolved experiment spec (one profile applied)."""

    key: str
    profile: str
    title: str
    track: str
    dataset: str
    models: tuple[str, ...]
    defenses: tuple[dict, ...]
    attacks: tuple[dict, ...]
    threats: tuple[str, ...]
    label_mode: str
    n: int
    n_defended: int  # samples for cells with a defense other than "none" (purifiers can be costly)
    seed: int
    batch_size: int
    eot: int
    train: dict
    settings: dict
    paper: tuple[dict, ...]
    paper_source: str = ""
    notes: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data (stored in every record and the manifest)."""
        return copy.deepcopy(self.raw)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge recursively; any other value (lists included) in ``over`` replaces the base's."""
    merged = copy.deepcopy(dict(base))
    for name, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(name), Mapping):
            merged[name] = deep_merge(merged[name], value)
        else:
            merged[name] = copy.deepcopy(value)
    return merged


def spec_path(name_or_path: str) -> Path:
    """A spec file path, or the built-in experiment of that key (``bench/experiments/<key>.toml``)."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise SpecError(f"spec file not found: {path}")
        return path
    from bench.registry import EXPERIMENTS
    from bench.builtins import register_builtins
    register_builtins()
    try:
        EXPERIMENTS.check(name_or_path, field="experiment")
    except BenchError as err:
        raise SpecError(str(err)) from None
    return Path(EXPERIMENTS.get(name_or_path))


def read_toml(path: Path, *, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a spec file and merge its ``base`` chain (base first)."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from err
    base = data.pop("base", None)
    if base is None:
        return data
    if base in _seen:
        raise SpecError(f"{path}: base: inheritance cycle through {base!r}")
    shared = BASES_DIR / f"{base}.toml"
    return deep_merge(read_toml(shared if shared.is_file() else spec_path(base), _seen=(*_seen, base)), data)


def load_spec(name_or_path: str, *, profile: str = "quick", overrides: Mapping[str, Any] | None = None) -> Spec:
    """Load, merge, apply ``profile`` and ``overrides``, validate. Raises :class:`SpecError` on bad input."""
    path = spec_path(name_or_path)
    data = read_toml(path)
    data.setdefault("key", path.stem)
    return resolve(data, profile=profile, overrides=overrides)


def resolve(data: Mapping[str, Any], *, profile: str = "quick", overrides: Mapping[str, Any] | None = None) -> Spec:
    """Validate plain spec data (already merged with its base) into a :class:`Spec`."""
    if profile not in PROFILES:
        raise SpecError(f"profile: unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    data = {k: v for k, v in data.items() if k != "profile"}  # a stored resolved spec names its profile
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise SpecError(_unknown_key_message("spec", sorted(unknown)[0], _TOP_KEYS))
    profiles = data.get("profiles", {})
    for name in profiles:
        if name not in PROFILES:
            raise SpecError(f"profiles: unknown profile {name!r}; valid: {', '.join(PROFILES)}")
    merged = deep_merge({k: v for k, v in data.items() if k != "profiles"}, profiles.get(profile, {}))
    merged = deep_merge(merged, overrides or {})
    from bench.spec_checks import validate
    return validate(merged, profile=profile)


def _unknown_key_message(where: str, name: str, valid: set[str]) -> str:
    import difflib
    close = difflib.get_close_matches(name, sorted(valid), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{where}: unknown key {name!r}.{hint} Valid keys: {', '.join(sorted(valid))}"
