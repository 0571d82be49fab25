"""Attack components, registered by key (see :mod:`attacks.base` for the contract).

``BUILTIN`` maps each registry key to the lazy ``"module:attr"`` target of its factory; the harness
registers these into ``bench.registry.ATTACKS``. Importing this package imports nothing heavy.
"""

BUILTIN: dict[str, str] = {
    "fgsm": "attacks.fgsm:build",
    "rand-fgsm": "attacks.rand_fgsm:build",
    "cw": "attacks.cw:build",
    "pgd": "attacks.pgd:build",
    "pgd-l2": "attacks.pgd_l2:build",
}
