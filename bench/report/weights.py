"""Which trained classifier weights a report's cells used, and whether one recipe produced several.

A classifier's cache key is its recipe (architecture, data SHA-256, training config, seed, transform), and a
cell record is keyed by its config, not by the weights. Training is deterministic on one machine, but another
CPU can round differently and yield other weights from the same recipe (measured: MNIST models A and D trained
by two cloud machines of one session differ in their SHA-256 at equal validation accuracy). A table whose
records came from several machines can then compare cells of one model row that saw different weights.
``classifier_weights`` lists every recipe with the weights its records name; the manifest carries the list and
``table.md`` warns when a recipe has more than one.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

# outcome of training, not part of the recipe
_OUTCOME = {"sha256", "final_loss", "val_accuracy", "train_seconds"}


def classifier_weights(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per classifier recipe: the recipe, and for each weight SHA-256 the records that used it."""
    seen: dict[str, tuple[dict[str, Any], dict[str, list[str]]]] = {}
    for record in records:
        meta = (record.get("notes") or {}).get("classifier")
        if not meta or "sha256" not in meta:
            continue
        recipe = {k: v for k, v in meta.items() if k not in _OUTCOME}
        _, by_sha = seen.setdefault(json.dumps(recipe, sort_keys=True, default=str), (recipe, defaultdict(list)))
        by_sha[meta["sha256"]].append(record["key"])
    return [{"arch": recipe.get("arch"), "dataset": recipe.get("dataset"), "recipe": recipe,
             "weights": {sha: sorted(keys) for sha, keys in sorted(by_sha.items())}}
            for _, (recipe, by_sha) in sorted(seen.items())]

def mixed_note(entries: list[dict[str, Any]]) -> str:
    """A warning for ``table.md`` naming each recipe trained into more than one set of weights ('' if none)."""
    mixed = [e for e in entries if len(e["weights"]) > 1]
    if not mixed:
        return ""
    parts = []
    for e in mixed:
        counts = ", ".join(f"{sha[:10]} ({len(keys)} cells)" for sha, keys in e["weights"].items())
        kind = "adversarially trained " if e["recipe"].get("config", {}).get("adv_eps") else ""
        kind += "reconstruction-trained " if e["recipe"].get("transform") else ""
        parts.append(f"{kind}classifier {e['arch']} ({e['dataset']}): {counts}")
    return ("**Mixed weights:** one training recipe gave different weights on different machines, and these "
            "cells used both: " + "; ".join(parts) + ". `manifest.json` (`classifier_weights`) lists the cells "
            "of each.")
