"""Expansion of a spec into cells: the unit of work, a pure function of its resolved config.

A cell's key hashes its config together with ``EVAL_VERSION``; its seed derives from the spec seed and the
config (not from its position), so results do not depend on the order in which cells run.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import EVAL_VERSION
from bench.cache import content_key
from bench.spec import Spec

NONE = "none"
_ATTACK_META = {"key", "eps", "backends", "label", "targeted", "threats"}


@dataclass(frozen=True)
class Cell:
    """One (model, defense, attack, ε, threat) evaluation of an experiment."""

    experiment: str
    profile: str
    track: str
    dataset: str
    model: str
    defense: str
    defense_label: str
    attack: str
    backend: str | None
    eps: float | None
    threat: str
    targeted: bool
    n: int
    seed: int
    spec_seed: int
    label_mode: str
    batch_size: int
    eot: int
    defense_params: dict = field(default_factory=dict)
    attack_params: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    # content identity of shipped files the defense loads (e.g. the generator's SHA-256), filled in by the
    # runner from the defense's ``fingerprint`` (bench.runner.fingerprint_artifacts); part of the key, so a
    # new artifact never reuses a record computed with the old one
    artifacts: dict = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        config = asdict(self)
        if not config["artifacts"]:  # cells without artifacts keep the keys they had before the field
            del config["artifacts"]
        return config

    @property
    def key(self) -> str:
        return content_key({"config": self.config, "eval_version": EVAL_VERSION})

    @property
    def label(self) -> str:
        eps = "" if self.eps is None else f" eps={self.eps:g}"
        return f"{self.model} | {self.defense_label} | {self.attack}{eps} | {self.threat}"


def _derive_seed(spec_seed: int, config: dict[str, Any]) -> int:
    return int(content_key({"seed": spec_seed, "cell": config})[:8], 16)


def expand(spec: Spec) -> list[Cell]:
    """All cells of ``spec`` in a stable order (models × defenses × attacks × backends × ε × threats)."""
    cells = []
    for model, defense, attack in itertools.product(spec.models, spec.defenses, spec.attacks):
        no_attack = attack["key"] == NONE
        threats = [NONE] if no_attack or defense["key"] == NONE else [
            t for t in defense["threats"] if t in attack.get("threats", defense["threats"])]
        params = {k: v for k, v in attack.items() if k not in _ATTACK_META}
        for backend, eps, threat in itertools.product(attack["backends"], attack.get("eps", [None]), threats):
            base = dict(experiment=spec.key, profile=spec.profile, track=spec.track, dataset=spec.dataset,
                        model=model, defense=defense["key"], defense_label=defense["label"], attack=attack["key"],
                        backend=backend, eps=eps, threat=threat, targeted=bool(attack.get("targeted", False)),
                        n=spec.n if defense["key"] == NONE else min(spec.n, spec.n_defended), spec_seed=spec.seed, label_mode=spec.label_mode, batch_size=spec.batch_size,
                        eot=spec.eot if threat == "bpda" else 1, defense_params=dict(defense["params"]),
                        attack_params=params, train=dict(spec.train),
                        # a classifier-track cell without a defense uses no settings: keep its key independent of them
                        settings={} if spec.track == "classifier" and defense["key"] == NONE else dict(spec.settings))
            cells.append(Cell(seed=_derive_seed(spec.seed, base), **base))
    return cells
