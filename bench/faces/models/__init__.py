"""Face-recognition models: each key builds a FaceModel whose ``.features`` maps (N, 3, H, W) in [0, 1] to
(N, D) identity features. Import-light: no torch at module level.

    build(trainset, *, config, cache_dir, device, seed, progress=True) -> FaceModel
"""
from __future__ import annotations

from typing import Any

BUILTIN = {
    "drgan": "bench.faces.models.drgan:build",
    "crgan": "bench.faces.models.crgan:build",
    "softmax-cnn": "bench.faces.models.softmax_cnn:build",
    "pixels": "bench.faces.models.pixels:build",
}
_MODULES = {"drgan": "drgan", "crgan": "crgan", "softmax-cnn": "softmax_cnn", "pixels": "pixels"}
PROFILES = ("smoke", "quick", "paper")


def profile_config(model_key: str, profile: str) -> dict[str, Any]:
    """The proposed training config of ``model_key`` for a profile (``smoke``, ``quick`` or ``paper``)."""
    import importlib

    from bench.errors import SpecError

    if model_key not in _MODULES:
        raise SpecError(f"model: unknown face model {model_key!r}; valid: {', '.join(_MODULES)}")
    if profile not in PROFILES:
        raise SpecError(f"profile: unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    module = importlib.import_module(f"bench.faces.models.{_MODULES[model_key]}")
    return dict(module.CONFIGS[profile])
