"""Shared training utilities for the face models: the FaceModel result, config resolution, content-keyed
checkpoints (atomic save, ``weights_only=True`` load), batch sampling with same-identity partner views.
"""
from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from bench.cache import atomic_write_bytes, content_key
from bench.errors import SpecError

log = logging.getLogger(__name__)

YAWS = tuple(range(-90, 91, 15))   # the Multi-PIE 13-camera grid; pose class i <-> yaw YAWS[i]
NUM_POSES = len(YAWS)


@dataclass
class FaceModel:
    """A built face model.

    ``features``: eval-mode, frozen ``nn.Module`` mapping (N, 3, H, W) in [0, 1] -> (N, D) identity features.
    ``generator``: for the GANs a module ``generator(x, yaw)`` re-rendering (N, 3, H, W) in [0, 1] at ``yaw``
    (int degrees or (N,) int64 degrees on the YAWS grid) -> (N, 3, H, W) in [0, 1]; else None.
    ``info``: training config, iterations, losses, wall time, deviations from the paper, ``trained`` flag
    (False when the checkpoint came from the cache).
    """

    features: nn.Module
    generator: nn.Module | None = None
    info: dict[str, Any] = field(default_factory=dict)


def pose_index(yaw: Tensor | int) -> Tensor:
    """Yaw degrees on the 15° grid −90..90 -> pose class 0..12 (int64 tensor)."""
    yaw = torch.as_tensor(yaw, dtype=torch.long)
    if bool(((yaw % 15) != 0).any() or (yaw.abs() > 90).any()):
        raise ValueError(f"expected yaw in {YAWS}, got {sorted(set(yaw.flatten().tolist()))}")
    return (yaw + 90) // 15


def resolve_config(model_key: str, defaults: Mapping[str, Any], config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``defaults`` overridden by ``config``; unknown keys and non-positive numbers raise SpecError."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise SpecError(f"{model_key} config: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(defaults))}")
    out = {**defaults, **config}
    for key, value in out.items():
        default = defaults[key]
        if isinstance(default, bool) or isinstance(default, (list, tuple)):
            continue
        if isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(f"{model_key} config: {key}={value!r} must be a number")
            if isinstance(default, int) and value != int(value):
                raise SpecError(f"{model_key} config: {key}={value!r} must be an integer")
            if value < 0 or (value == 0 and key in ("iterations", "batch_size", "width", "feat_dim", "lr")):
                raise SpecError(f"{model_key} config: {key}={value!r} must be positive")
            out[key] = type(default)(value)
    return out


def checkpoint_path(cache_dir: Path, model_key: str, *, arch: str, trainset_sha: str,
                    config: Mapping[str, Any], seed: int) -> Path:
    """``cache_dir/<model_key>-<sha256 of (key, arch version, trainset sha, config, seed)>.pt``."""
    key = content_key({"model": model_key, "arch": arch, "trainset": trainset_sha, "config": dict(config),
                       "seed": int(seed)})
    return Path(cache_dir) / f"{model_key}-{key[:24]}.pt"


def save_checkpoint(path: Path, states: Mapping[str, nn.Module], info: Mapping[str, Any]) -> None:
    """Atomically save the modules' state dicts (on CPU) and the JSON-like ``info``."""
    payload = {"states": {name: {k: v.detach().cpu() for k, v in m.state_dict().items()}
                          for name, m in states.items()},
               "info": dict(info)}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: Path, modules: Mapping[str, nn.Module]) -> dict[str, Any]:
    """Load state dicts into ``modules`` (``weights_only=True``) and return the stored ``info``."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    for name, module in modules.items():
        module.load_state_dict(payload["states"][name])
    return dict(payload["info"])


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode, no parameter gradients (input gradients still flow, as attacks need)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class PairSampler:
    """Random mini-batches of (index, partner index): the partner has the same subject and illumination
    (falling back to the same subject; any illumination when ``match_illum=False``), chosen uniformly among
    those images; it may be the sample itself.
    """

    def __init__(self, subject: Tensor, illum: Tensor, *, generator: torch.Generator, match_illum: bool = True) -> None:
        self.n = int(subject.shape[0])
        if not match_illum:   # partners from any illumination of the subject
            illum = torch.zeros_like(illum)
        self.generator = generator
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (s, il) in enumerate(zip(subject.tolist(), illum.tolist())):
            groups.setdefault((s, il), []).append(i)
        by_subject: dict[int, list[int]] = {}
        for (s, _), idx in groups.items():
            by_subject.setdefault(s, []).extend(idx)
        # fall back to any view of the subject when the (subject, illum) group is a singleton
        pools = [groups[(s, il)] if len(groups[(s, il)]) > 1 else by_subject[s]
                 for s, il in zip(subject.tolist(), illum.tolist())]
        self.width = max(len(p) for p in pools)
        table = torch.full((self.n, self.width), -1, dtype=torch.long)
        for i, pool in enumerate(pools):
            table[i, :len(pool)] = torch.as_tensor(pool)
        self.table, self.sizes = table, torch.as_tensor([len(p) for p in pools])

    def sample(self, batch_size: int) -> tuple[Tensor, Tensor]:
        idx = torch.randint(self.n, (batch_size,), generator=self.generator)
        pick = (torch.rand(batch_size, generator=self.generator) * self.sizes[idx]).long()
        return idx, self.table[idx, pick]


class LossLog:
    """Running means of named losses, snapshotted into a short history for ``info``."""

    def __init__(self, *, every: int) -> None:
        self.every, self.sums, self.count, self.history = max(1, every), {}, 0, []

    def add(self, it: int, **losses: float) -> dict[str, float]:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1
        means = {k: v / self.count for k, v in self.sums.items()}
        if (it + 1) % self.every == 0:
            self.history.append({"iteration": it + 1, **{k: round(v, 5) for k, v in means.items()}})
            self.sums, self.count = {}, 0
        return means


def cached_build(*, model_key: str, arch: str, trainset: Any, config: Mapping[str, Any], seed: int,
                 cache_dir: Path, modules: Mapping[str, nn.Module],
                 train: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], Path]:
    """Load ``modules`` from the content-keyed checkpoint, or run ``train()`` (which trains ``modules`` in
    place and returns its info) under a forked, seeded RNG and save them. Returns (info, checkpoint path).
    """
    path = checkpoint_path(cache_dir, model_key, arch=arch, trainset_sha=trainset.sha256, config=config, seed=seed)
    if path.is_file():
        log.info("%s: loading cached checkpoint %s", model_key, path)
        info = load_checkpoint(path, modules)
        info["trained"] = False
        return info, path
    log.info("%s: training (no checkpoint at %s)", model_key, path)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        info = train()
    info.update(model=model_key, arch=arch, config=dict(config), seed=int(seed), trainset=trainset.name,
                trainset_split=trainset.split, trainset_sha256=trainset.sha256,
                wall_time_s=round(time.perf_counter() - start, 2), torch_threads=torch.get_num_threads())
    save_checkpoint(path, modules, info)
    info["trained"] = True
    return info, path
