"""Defense components, each registered by a short key (import-light: no torch at module level).

A registered defense is a factory ``build(ctx: DefenseContext, **params) -> DefenseParts``; see
:mod:`defenses.base` for the contract.
"""

BUILTIN = {
    "none": "defenses.identity:build",
    "median": "defenses.median:build",
    "defense-gan": "defenses.defensegan.factory:build",
    "magnet": "defenses.magnet:build",
    "adv-training": "defenses.adv_training:build",
    "nearest-train": "defenses.nearest_train:build",
}
