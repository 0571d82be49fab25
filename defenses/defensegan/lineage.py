"""Continue a shipped generator in a new training run, and keep the whole history in its provenance.

The shipped artifact is a fp16 generator, optionally with its fp16 critic (``<dataset>-wgan-gp.critic.pt``);
the 31 MB optimiser state is not in git, so a machine without the cache cannot *resume* the run that made it.
``python -m defenses.defensegan.train --dataset mnist --warm-start shipped`` instead starts a new run at the
shipped iteration:

* G = the shipped fp16 weights (as fp32); the critic = the shipped fp16 critic when there is one, else a
  fresh one trained ``critic_warmup`` critic-only steps against the fixed G, so that the first generator
  steps follow a critic that already separates real from generated images;
* both Adam optimisers start with zero moments (the critic's after its warm-up steps);
* the run's content key includes the parent (weights and critic SHA-256, iteration, warm-up), so it never
  mixes with a run of another parent or with the original one.

Each segment of the history goes into the exported provenance as ``lineage`` (iterations, key, command,
precision, how it started), and every Defense-GAN report states the restarts as deviations from the recipe.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from bench.errors import BenchError

log = logging.getLogger(__name__)
DEFAULT_CRITIC_WARMUP = 500


@dataclass(frozen=True)
class WarmStart:
    """Where a continuing run starts: a generator (and maybe a critic) state dict at ``iteration``."""

    generator: dict[str, torch.Tensor]
    critic: dict[str, torch.Tensor] | None
    iteration: int
    critic_warmup: int = DEFAULT_CRITIC_WARMUP
    provenance: dict[str, Any] = field(default_factory=dict)
    curve: dict[str, Any] | None = None  # the parent's measured quality curve (``quality_curve``)

    def __post_init__(self) -> None:
        if self.iteration < 1:
            raise ValueError(f"expected a warm-start iteration >= 1, got {self.iteration}")
        if self.critic_warmup < 0:
            raise ValueError(f"expected critic_warmup >= 0, got {self.critic_warmup}")

    @property
    def parent(self) -> dict[str, Any]:
        """What identifies the starting point in the run's content key."""
        critic = self.provenance.get("critic") or {}
        warmup = 0 if self.critic is not None else self.critic_warmup  # a shipped critic is not warmed up
        return {"sha256": self.provenance.get("sha256"), "critic_sha256": critic.get("sha256"),
                "iteration": self.iteration, "critic_warmup": warmup}


def from_shipped(dataset: str, *, critic_warmup: int = DEFAULT_CRITIC_WARMUP,
                 weights_dir: Any = None) -> WarmStart:
    """The shipped generator of ``dataset`` (and its critic, when shipped), verified by SHA-256."""
    from defenses.defensegan import artifacts

    prov = artifacts.verify_artifact(dataset, weights_dir)
    pt, _ = artifacts.artifact_paths(dataset, weights_dir)
    gen = torch.load(pt, map_location="cpu", weights_only=True)
    critic = artifacts.load_critic(dataset, prov, weights_dir)
    return WarmStart(generator=gen, critic=critic, iteration=int(prov["iterations"]), critic_warmup=critic_warmup,
                     provenance={k: v for k, v in prov.items() if k != "quality_curve"},
                     curve=prov.get("quality_curve"))


def apply(warm: WarmStart, gen: nn.Module, critic: nn.Module, critic_step: Callable[[], Any]) -> int:
    """Load ``warm`` into ``gen`` / ``critic`` (fp32), warm a fresh critic up; return the starting iteration."""
    gen.load_state_dict({k: v.float() for k, v in warm.generator.items()})
    if warm.critic is not None:
        critic.load_state_dict({k: v.float() for k, v in warm.critic.items()})
        log.info("warm start at iteration %d from the shipped generator and critic", warm.iteration)
        return warm.iteration
    gen.train()
    critic.train()
    for _ in range(warm.critic_warmup):
        critic_step()
    log.info("warm start at iteration %d from the shipped generator; fresh critic trained %d steps alone",
             warm.iteration, warm.critic_warmup)
    return warm.iteration


def segment(meta: dict[str, Any], upto: int) -> dict[str, Any]:
    """One entry of ``lineage``: the part of the history a run folder (its ``meta.json``) trained."""
    parent = meta.get("parent")
    start = 0 if parent is None else int(parent["iteration"])
    if parent is None:
        began = "tflib initialisation"
    elif parent.get("critic_sha256"):
        began = "shipped fp16 G and critic, fresh Adam moments"
    else:
        began = f"shipped fp16 G, fresh critic trained {parent.get('critic_warmup')} steps alone, fresh Adam moments"
    cfg = meta.get("config", {})
    return {"from": start, "to": int(upto), "key": meta.get("key"), "command": meta.get("command"),
            "precision": cfg.get("precision", "fp32"), "start": began, "torch": meta.get("torch")}


def lineage(prov: dict[str, Any]) -> list[dict[str, Any]]:
    """The training history of a shipped generator, oldest segment first (a single run: one segment)."""
    if prov.get("lineage"):
        return list(prov["lineage"])
    if prov.get("iterations") is None:
        return []
    return [{"from": 0, "to": int(prov["iterations"]), "key": prov.get("key"), "command": prov.get("command"),
             "precision": prov.get("config", {}).get("precision", "fp32"), "start": "tflib initialisation",
             "torch": prov.get("torch")}]


def extend(parent: dict[str, Any], meta: dict[str, Any], upto: int) -> list[dict[str, Any]]:
    """The lineage of a run that continued ``parent`` (its shipped provenance) up to ``upto``."""
    earlier = lineage(parent)
    if earlier and earlier[-1]["to"] != int(meta["parent"]["iteration"]):
        raise BenchError(f"lineage broken: the parent ends at {earlier[-1]['to']}, the run starts at "
                         f"{meta['parent']['iteration']}")
    return [*earlier, segment(meta, upto)]


def deviations(prov: dict[str, Any]) -> list[str]:
    """Report lines for a generator's restarts and reduced precision (none for a single fp32 run)."""
    out = []
    for seg in lineage(prov):
        if seg["from"] > 0:
            out.append(f"generator iterations {seg['from']}-{seg['to']} continued from the shipped fp16 weights "
                       f"({seg['start']})")
        if seg.get("precision", "fp32") != "fp32":
            out.append(f"generator iterations {seg['from']}-{seg['to']} trained under {seg['precision']} autocast "
                       "(recipe: fp32)")
    return out
