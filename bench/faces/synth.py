"""The synthetic multi-pose face set: generate once with ``bench.faces.render``, cache, verify, load.

Layout: ``<root>/datasets/synth-faces-<key>/{train,test}.npz`` plus ``{train,test}.json`` (the generator
parameters and the SHA-256 of the ``.npz``), ``root`` = ``$BENCH_DATA`` or ``~/.cache/defense-bench`` and
``key`` = the first 12 hex digits of a hash of every generator parameter and the renderer version. Each
``.npz`` holds ``x`` uint8 (N, 3, H, W), ``subject``, ``yaw``, ``illum`` int64 (N,), ordered identity-major,
then yaw (−90 … 90), then illumination. Train and test identities are independent draws from the same
parameter distribution (different seeds), so the two splits are different people.
"""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from bench.cache import atomic_write_bytes, atomic_write_text, content_key, sha256_file
from bench.data.cache import dataset_dir
from bench.errors import BenchError, DataError
from bench.faces.faceset import YAWS, FaceSet
from bench.faces.head import PARAM_RANGES, Head, sample_identities
from bench.faces.render import LIGHTS, RENDERER_VERSION, render_head

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)
NAME = "synth-faces"
PITCH_JITTER = 4.0   # degrees; one pitch per identity × yaw, uniform in ±PITCH_JITTER
SPLITS = ("train", "test")
_VERIFIED: dict[tuple[str, int, int], str] = {}   # (file, mtime_ns, size) -> verified sha256


def generator_params(*, n_train_ids: int, n_test_ids: int, size: int, n_illums: int, seed: int) -> dict[str, Any]:
    """Everything that determines the rendered pixels (the cache key hashes this)."""
    return {"n_train_ids": n_train_ids, "n_test_ids": n_test_ids, "size": size, "n_illums": n_illums,
            "seed": seed, "renderer": RENDERER_VERSION, "pitch_jitter": PITCH_JITTER,
            "lights": LIGHTS[:n_illums], "param_ranges": PARAM_RANGES, "yaws": YAWS}


def _check_args(split: str, n_train_ids: int, n_test_ids: int, size: int, n_illums: int) -> None:
    if split not in SPLITS:
        raise DataError(f"split: unknown split {split!r} for {NAME}. Valid choices: {', '.join(SPLITS)}")
    for name, value, low in (("n_train_ids", n_train_ids, 1), ("n_test_ids", n_test_ids, 1), ("size", size, 16)):
        if not isinstance(value, int) or value < low:
            raise BenchError(f"{name}: expected an integer >= {low}, got {value!r}")
    if not isinstance(n_illums, int) or not 1 <= n_illums <= len(LIGHTS):
        raise BenchError(f"n_illums: expected an integer in 1..{len(LIGHTS)}, got {n_illums!r}")


def render_split(split: str, params: dict[str, Any], *, progress: bool = True) -> dict[str, np.ndarray]:
    """Render one split: ``x`` uint8 (N, 3, H, W), ``subject``/``yaw``/``illum`` int64 (N,)."""
    n_ids = params[f"n_{split}_ids"]
    gen = torch.Generator().manual_seed(int(content_key({"seed": params["seed"], "split": split})[:15], 16))
    ids = sample_identities(n_ids, gen)
    pitches = (torch.rand(n_ids, len(YAWS), generator=gen) * 2 - 1) * PITCH_JITTER
    lights = params["lights"]
    n_l, size = len(lights), params["size"]
    x = np.empty((n_ids, len(YAWS), n_l, 3, size, size), dtype=np.uint8)
    steps: Any = range(n_ids)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"rendering {NAME} {split}", unit="id")
    for i in steps:
        img = render_head(Head(ids[i]), YAWS, pitches=pitches[i], lights=lights, size=size)
        x[i] = (img * 255).round().to(torch.uint8).numpy()
    grid = np.stack(np.meshgrid(np.arange(n_ids), YAWS, np.arange(n_l), indexing="ij"), -1).reshape(-1, 3)
    return {"x": x.reshape(-1, 3, size, size), "subject": grid[:, 0].astype(np.int64),
            "yaw": grid[:, 1].astype(np.int64), "illum": grid[:, 2].astype(np.int64)}


def _write(path: Path, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    meta = {"name": NAME, "params": params, "sha256": sha256_file(path), "n": int(arrays["x"].shape[0])}
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1, default=list))


def _verify(path: Path) -> str:
    meta_path = path.with_suffix(".json")
    try:
        expected = json.loads(meta_path.read_text())["sha256"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{meta_path}: unreadable metadata ({err}); delete {path.parent} to regenerate") from err
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if _VERIFIED.get(key) != expected:
        actual = sha256_file(path)
        if actual != expected:
            raise DataError(f"{path}: SHA-256 {actual[:12]}… does not match {expected[:12]}… in {meta_path.name};"
                            f" delete {path.parent} to regenerate")
        _VERIFIED[key] = actual
    return expected


def cache_path(split: str, params: dict[str, Any], root: Path | None = None) -> Path:
    """``<root>/datasets/synth-faces-<key>/<split>.npz``."""
    return dataset_dir(f"{NAME}-{content_key(params)[:12]}", root) / f"{split}.npz"


def load_synth(split: Literal["train", "test"], *, n_train_ids: int = 200, n_test_ids: int = 100, size: int = 64,
               n_illums: int = 5, seed: int = 0, root: Path | str | None = None, progress: bool = True) -> FaceSet:
    """Load (rendering and caching on first use) one split of the synthetic face set.

    Returns a :class:`FaceSet` with ``n_<split>_ids`` × 13 yaws × ``n_illums`` images, x float32
    (N, 3, size, size) in [0, 1], subject 0..n_ids−1, yaw in ``YAWS``, illum 0..n_illums−1 (0 = frontal).
    Raises :class:`DataError` when a cached file fails its SHA-256 check.
    """
    _check_args(split, n_train_ids, n_test_ids, size, n_illums)
    params = generator_params(n_train_ids=n_train_ids, n_test_ids=n_test_ids, size=size, n_illums=n_illums,
                              seed=seed)
    path = cache_path(split, params, Path(root) if root is not None else None)
    if not path.exists():
        log.info("rendering %s/%s into %s", NAME, split, path)
        _write(path, render_split(split, params, progress=progress), params)
    sha = _verify(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in ("x", "subject", "yaw", "illum")}
    return FaceSet(x=torch.from_numpy(arrays["x"]).float().div_(255), subject=torch.from_numpy(arrays["subject"]),
                   yaw=torch.from_numpy(arrays["yaw"]), illum=torch.from_numpy(arrays["illum"]),
                   name=NAME, split=split, sha256=sha)


def contact_sheet(faceset: FaceSet, *, n_ids: int = 8, illum: int = 0) -> "Figure":
    """A figure of the first ``n_ids`` identities (rows) × the 13 yaws (columns) under ``illum``."""
    from matplotlib.figure import Figure

    subjects = faceset.subject.unique()[:n_ids].tolist()
    fig = Figure(figsize=(len(YAWS) * 0.9, len(subjects) * 0.9 + 0.3), layout="constrained")
    axes = fig.subplots(len(subjects), len(YAWS), squeeze=False)
    for r, s in enumerate(subjects):
        for c, yaw in enumerate(YAWS):
            ax = axes[r][c]
            ax.set_axis_off()
            hit = ((faceset.subject == s) & (faceset.yaw == yaw) & (faceset.illum == illum)).nonzero().view(-1)
            if hit.numel():
                ax.imshow(faceset.x[hit[0]].permute(1, 2, 0).numpy())
            if r == 0:
                ax.set_title(f"{yaw}°", fontsize=7)
    fig.suptitle(f"{faceset.name} / {faceset.split}: identities × yaw (illum {illum})", fontsize=8)
    return fig


@dataclass(frozen=True)
class SynthFacesInfo:
    """Registry entry for the synthetic face set (cheap to import; rendering happens in ``load``)."""

    name: str = NAME
    track: str = "faces"
    splits: tuple[str, ...] = SPLITS
    yaws: tuple[int, ...] = YAWS
    defaults: dict[str, Any] = field(default_factory=lambda: {
        "n_train_ids": 200, "n_test_ids": 100, "size": 64, "n_illums": 5, "seed": 0})
    description: str = ("Synthetic 3D heads (SDF of ellipsoids, sphere-traced) at Multi-PIE's 13 yaws under "
                        "several lights; train/test identities disjoint. See bench.faces.render for limits.")

    def __hash__(self) -> int:
        return hash(self.name)

    def load(self, split: Literal["train", "test"], **options: Any) -> FaceSet:
        """``load_synth(split, **options)``."""
        return load_synth(split, **options)


SYNTH_FACES = SynthFacesInfo()
