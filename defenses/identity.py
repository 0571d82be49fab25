"""The ``none`` defense: the bare classifier."""
from __future__ import annotations

from defenses.base import DefenseContext, DefenseParts, Identity


def build(ctx: DefenseContext) -> DefenseParts:
    return DefenseParts(purifier=Identity(), classifier=ctx.classifier)
