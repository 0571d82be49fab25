"""What the attacker differentiates through, per threat setting (see :mod:`defenses.base`)."""
from __future__ import annotations

from torch import nn

from defenses.base import BPDA, DefenseParts, Purified


def attack_surface(parts: DefenseParts, threat: str, *, eot: int = 1) -> nn.Module:
    """The module an attack sees: the bare classifier (``none``/``oblivious``), the unrolled defense, or BPDA."""
    if threat in ("none", "oblivious"):
        return parts.classifier
    if threat == "unrolled":
        return Purified(parts.purifier, parts.classifier, unrolled=True)
    if threat == "bpda":
        return BPDA(parts.purifier, parts.classifier, eot=eot)
    raise ValueError(f"unknown threat {threat!r}")
