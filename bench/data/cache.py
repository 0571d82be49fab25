"""The on-disk cache of decoded datasets: where it is, how it is written, read and verified.

Layout: ``<root>/datasets/<name>/data.npz`` (uncompressed, so loading is a plain read) holding
``train_images`` uint8 (60000, 28, 28), ``train_labels`` int64 (60000,), ``test_images`` uint8
(10000, 28, 28), ``test_labels`` int64 (10000,), plus ``manifest.json`` saying where the data came from.
``root`` defaults to ``$BENCH_DATA``, else ``~/.cache/defense-bench``. Every write is atomic.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.catalog import DatasetInfo
from bench.errors import DataError

DATA_FILE = "data.npz"
MANIFEST_FILE = "manifest.json"
KEYS = ("train_images", "train_labels", "test_images", "test_labels")
Arrays = dict[str, np.ndarray]


def default_root() -> Path:
    """``$BENCH_DATA`` if set, else ``~/.cache/defense-bench``."""
    env = os.environ.get("BENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "defense-bench"


def dataset_dir(name: str, root: Path | None = None) -> Path:
    """``<root>/datasets/<name>``."""
    return Path(root if root is not None else default_root()).expanduser() / "datasets" / name


def digest(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 hex of the uint8 image bytes (C order) followed by the little-endian int64 label bytes."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).data)
    h.update(np.ascontiguousarray(labels, dtype="<i8").data)
    return h.hexdigest()


def check_set(info: DatasetInfo, set_name: str, images: np.ndarray, labels: np.ndarray, *, origin: str) -> str:
    """Check shape, dtype and checksum of one official set (``"train"`` or ``"test"``); return its sha256.

    Raises :class:`DataError` naming ``origin`` (a file or folder) on any mismatch.
    """
    n = info.set_sizes[set_name]
    height, width = info.shape[1:]
    if images.shape != (n, height, width) or images.dtype != np.uint8:
        raise DataError(f"{origin}: {info.name} {set_name} images have shape {images.shape} {images.dtype}, "
                        f"expected ({n}, {height}, {width}) uint8")
    if labels.shape != (n,) or labels.dtype != np.int64:
        raise DataError(f"{origin}: {info.name} {set_name} labels have shape {labels.shape} {labels.dtype}, "
                        f"expected ({n},) int64")
    found = digest(images, labels)
    if found != info.sha256[set_name]:
        raise DataError(f"{origin}: checksum mismatch for {info.name} {set_name} set: sha256 "
                        f"{found[:16]}…, expected {info.sha256[set_name][:16]}…")
    return found


def check_arrays(info: DatasetInfo, arrays: Arrays, *, origin: str) -> dict[str, str]:
    """:func:`check_set` for both official sets of ``arrays``; return ``{set: sha256}``."""
    return {s: check_set(info, s, arrays[f"{s}_images"], arrays[f"{s}_labels"], origin=origin)
            for s in info.set_sizes}


def _atomic_write(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temp file in ``path``'s folder, then ``os.replace`` it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is shared with other users' runs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_cache(info: DatasetInfo, arrays: Arrays, manifest: dict[str, Any], *, root: Path | None) -> Path:
    """Write verified canonical arrays and their manifest atomically; return the dataset folder."""
    folder = dataset_dir(info.name, root)
    _atomic_write(folder / DATA_FILE, lambda f: np.savez(f, **{k: arrays[k] for k in KEYS}))
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    _atomic_write(folder / MANIFEST_FILE, lambda f: f.write(text.encode()))
    return folder


def missing_message(name: str, path: Path) -> str:
    return (f"dataset {name!r} is not in the cache ({path} does not exist): run `bench data fetch {name}`"
            f" (or `bench data fetch {name} --from DIR` with a folder of its IDX files)")


def read_cache(info: DatasetInfo, *, root: Path | None, sets: tuple[str, ...] = ("train", "test")) -> Arrays:
    """Read the requested official sets from the cache, unverified. Loading never downloads.

    Raises :class:`DataError` with the fetch command when the file is missing, or naming the file when it
    is unreadable or lacks an array.
    """
    path = dataset_dir(info.name, root) / DATA_FILE
    if not path.is_file():
        raise DataError(missing_message(info.name, path))
    out: Arrays = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for set_name in sets:
                for kind in ("images", "labels"):
                    out[f"{set_name}_{kind}"] = npz[f"{set_name}_{kind}"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: corrupt cache file ({type(err).__name__}: {err}); delete it and run "
                        f"`bench data fetch {info.name}`") from err
    return out


def read_manifest(name: str, *, root: Path | None) -> dict[str, Any]:
    """The manifest of a cached dataset, or ``{}`` when there is none or it is unreadable."""
    try:
        return json.loads((dataset_dir(name, root) / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return {}
