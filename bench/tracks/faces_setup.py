"""What a faces cell needs before it measures anything: the data, the gallery and probe split, the trained
face model (through the registered factory and its content-keyed cache), and small image sheets.

Gallery: one image per test identity, the first at yaw 0 and illumination 0 (frontal, neutral light).
Probes: every other test image of an enrolled identity, ``n`` per signed yaw bin, drawn with a generator
seeded from the *spec* seed and the test set's digest, so every cell of an experiment sees the same probes.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from bench.cache import cache_root, content_key
from bench.errors import DataError
from bench.faces.faceset import YAWS, FaceSet
from bench.tracks.faces_settings import FaceSettings

log = logging.getLogger(__name__)
_MEMO: dict[str, Any] = {}     # content key -> FaceSet or FaceModel (a run evaluates many cells of one model)
_MEMO_SIZE = 6


def show_progress() -> bool:
    """Progress bars for training: on a terminal, or when ``BENCH_PROGRESS=1`` (as ``bench.progress``)."""
    forced = os.environ.get("BENCH_PROGRESS")
    return forced == "1" if forced is not None else sys.stderr.isatty()


def _remember(key: str, value: Any) -> Any:
    if len(_MEMO) >= _MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[key] = value
    return value


def _data_options(dataset: str, fs: FaceSettings) -> dict[str, Any]:
    options = dict(fs.data)
    if fs.data_table == "manifest":
        from bench.data.cache import default_root

        path = Path(str(options["manifest"])).expanduser()
        options["manifest"] = str(path if path.is_absolute() else default_root() / path)
        if "crop" in options:
            options["crop"] = tuple(options["crop"])
    return options


def load_split(dataset: str, fs: FaceSettings, split: str) -> FaceSet:
    """The ``split`` FaceSet of ``dataset`` with the spec's loader options (memoised per process)."""
    from bench.data.cache import default_root
    from bench.registry import DATASETS

    options = _data_options(dataset, fs)
    key = content_key({"set": dataset, "split": split, "options": options, "root": str(default_root())})
    if key not in _MEMO:
        info = DATASETS.get(dataset)
        extra = {"progress": show_progress()} if fs.data_table == "synth" else {}
        faceset = info.load(split, **options, **extra)
        if not isinstance(faceset, FaceSet):
            raise DataError(f"dataset: {dataset!r} is not a face dataset (got {type(faceset).__name__}); "
                            "the faces track needs one that returns a FaceSet")
        _remember(key, faceset)
    return _MEMO[key]


def face_model(model: str, dataset: str, fs: FaceSettings, *, seed: int, device: torch.device) -> Any:
    """The trained :class:`~bench.faces.models.training.FaceModel` (registered factory; cached on disk)."""
    from bench.registry import MODELS

    config = fs.face_models.get(model, {})
    cache_dir = cache_root() / "face-models" / dataset
    key = content_key({"model": model, "config": config, "set": dataset, "options": _data_options(dataset, fs),
                       "seed": seed, "cache": str(cache_dir), "device": str(device)})
    if key not in _MEMO:
        train = load_split(dataset, fs, fs.train_split)
        built = MODELS.get(model)(train, config=config, cache_dir=cache_dir, device=device, seed=seed,
                                  progress=show_progress())
        if not hasattr(built, "features"):
            raise DataError(f"models: {model!r} is not a face model (no .features); the faces track needs one")
        _remember(key, built)
    return _MEMO[key]


def gallery_index(test: FaceSet) -> torch.Tensor:
    """Indices (G,) of the first yaw-0, illumination-0 image of each identity, in ascending identity."""
    frontal = ((test.yaw == 0) & (test.illum == 0)).nonzero().view(-1)
    if frontal.numel() == 0:
        raise DataError(f"{test.name}/{test.split}: no frontal (yaw 0), neutral-light (illum 0) image to enrol")
    first: dict[int, int] = {}
    for i, s in zip(frontal.tolist(), test.subject[frontal].tolist()):
        first.setdefault(s, i)
    if len(first) < 2:
        raise DataError(f"{test.name}/{test.split}: {len(first)} enrolled identity; need at least 2")
    return torch.tensor([first[s] for s in sorted(first)], dtype=torch.int64)


def probe_index(test: FaceSet, gallery: torch.Tensor, *, n: int, seed: int) -> torch.Tensor:
    """Up to ``n`` probes (int64 indices, ascending) per signed yaw bin, excluding the gallery images."""
    enrolled = torch.isin(test.subject, test.subject[gallery])
    enrolled[gallery] = False
    chosen = []
    for yaw in YAWS:
        candidates = (enrolled & (test.yaw == yaw)).nonzero().view(-1)
        if candidates.numel() == 0:
            continue
        gen = torch.Generator().manual_seed(int(content_key({"probes": seed, "yaw": yaw, "set": test.sha256})[:15], 16))
        chosen.append(candidates[torch.randperm(candidates.numel(), generator=gen)[:n]])
    if not chosen:
        raise DataError(f"{test.name}/{test.split}: no probe images besides the gallery")
    return torch.cat(chosen).sort().values


@torch.no_grad()
def embed(features: torch.nn.Module, x: torch.Tensor, *, batch_size: int, device: torch.device) -> torch.Tensor:
    """Unit-norm features (N, D) on the CPU of images (N, 3, H, W) in [0, 1]."""
    out = [F.normalize(features(chunk.to(device)).flatten(1).float(), dim=1).cpu() for chunk in x.split(batch_size)]
    return torch.cat(out)


def png_b64(grid: torch.Tensor) -> str:
    """(3, H, W) float in [0, 1] -> base64 PNG text (deterministic bytes; stored in records)."""
    from PIL import Image

    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid(rows: list[torch.Tensor]) -> torch.Tensor:
    """Rows of images (C, 3, H, W) -> one (3, R·H, C·W) image."""
    return torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)


def sheets(test: FaceSet, gallery: torch.Tensor, model: Any, *, ids: int, device: torch.device) -> dict[str, Any]:
    """The data contact sheet (identities × 13 yaws, illum 0) and, for models with a generator, their
    rotation sheet (an input at a non-frontal yaw, then its re-rendering at each of the 13 yaws)."""
    subjects = test.subject[gallery][:ids].tolist()
    if not subjects:
        return {}
    rows, inputs, input_yaws = [], [], []
    for r, s in enumerate(subjects):
        row = []
        for yaw in YAWS:
            hit = ((test.subject == s) & (test.yaw == yaw) & (test.illum == 0)).nonzero().view(-1)
            row.append(test.x[hit[0]] if hit.numel() else torch.ones_like(test.x[0]))
        rows.append(torch.stack(row))
        yaw = (45, -60, 90, -30, 75, -15)[r % 6]
        inputs.append(rows[-1][YAWS.index(yaw)])
        input_yaws.append(yaw)
    out = {"contact": {"png": png_b64(_grid(rows)), "rows": len(rows), "cols": len(YAWS), "row_labels": subjects,
                       "col_labels": [f"{y}°" for y in YAWS]}}
    if getattr(model, "generator", None) is not None:
        from bench.faces.models.sheets import rotations

        x = torch.stack(inputs)
        views = rotations(model, x.to(device))           # (M, 13, 3, H, W)
        grid = _grid([torch.cat([x[i:i + 1].cpu(), views[i].cpu()]) for i in range(len(inputs))])
        out["rotations"] = {"png": png_b64(grid), "rows": len(inputs), "cols": len(YAWS) + 1,
                            "row_labels": [f"{y}°" for y in input_yaws],
                            "col_labels": ["input", *[f"{y}°" for y in YAWS]]}
    return out
