"""``load`` and ``fetch``: the two things the rest of the harness does with datasets.

``fetch`` gets the data from a source (see :mod:`bench.data.sources`), verifies it against the catalog
checksums and writes it to the cache; ``load`` reads the cache (never the network), verifies it once per
process and returns a :class:`~bench.data.split.Split` of float tensors.
"""
from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data import cache
from bench.data.catalog import get_info
from bench.data.sources import SOURCES
from bench.data.split import Split
from bench.errors import DataError

log = logging.getLogger(__name__)

# (cache file, mtime_ns, size, official set) -> verified (images uint8 (N, 28, 28), labels int64 (N,)).
# Keyed on the file's stat so a re-fetch in the same process is seen.
_SETS: dict[tuple[str, int, int, str], tuple[np.ndarray, np.ndarray]] = {}
_SPLIT_SHA: dict[tuple[str, int, int, str], str] = {}


def _verified_set(name: str, set_name: str, root: Path | None) -> tuple[tuple, np.ndarray, np.ndarray]:
    info = get_info(name)
    path = cache.dataset_dir(name, root) / cache.DATA_FILE
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(cache.missing_message(name, path)) from None
    key = (str(path), st.st_mtime_ns, st.st_size, set_name)
    if key not in _SETS:
        arrays = cache.read_cache(info, root=root, sets=(set_name,))
        images, labels = arrays[f"{set_name}_images"], arrays[f"{set_name}_labels"]
        cache.check_set(info, set_name, images, labels, origin=str(path))
        _SETS[key] = (images, labels)
    return key, *_SETS[key]


def load(name: str, split: str, *, root: Path | None = None) -> Split:
    """Load ``split`` ("train", "val" or "test") of dataset ``name`` from the cache.

    train = first 50 000 images of the official training set, val = its last 10 000, test = the
    10 000 test images. Returns ``x`` float32 (N, 1, 28, 28) = uint8 / 255 in [0, 1] and ``y`` int64 (N,).
    Raises :class:`DataError` when the data is not fetched (with the command that fetches it), when the
    cache file is corrupt or its checksum does not match (naming the file). Never downloads.
    """
    import torch

    set_name, start, stop = get_info(name).split_range(split)
    key, images, labels = _verified_set(name, set_name, root)
    images, labels = images[start:stop], labels[start:stop]
    sha_key = (*key[:3], split)
    if sha_key not in _SPLIT_SHA:
        _SPLIT_SHA[sha_key] = cache.digest(images, labels)
    x = torch.from_numpy(images).to(torch.float32).div_(255.0).unsqueeze_(1)
    y = torch.from_numpy(labels.copy())
    return Split(name=name, split=split, x=x, y=y, sha256=_SPLIT_SHA[sha_key])


def clear_memo() -> None:
    """Forget the verified arrays kept by :func:`load` (frees memory; the next load re-reads the file)."""
    _SETS.clear()
    _SPLIT_SHA.clear()


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_result` did: the dataset folder, the source key, where the data came from."""

    name: str
    path: Path
    source: str
    origin: str
    already_cached: bool
    seconds: float

    def summary(self) -> str:
        if self.already_cached:
            return f"{self.name}: already in {self.path} (from {self.origin}); checksums OK"
        return (f"{self.name}: fetched from {self.source} ({self.origin}) into {self.path} "
                f"in {self.seconds:.1f} s; checksums OK")


def _source_order(name: str, from_dir: Path | None, source: str | None) -> list[str]:
    if source is not None:
        if source not in SOURCES:
            raise DataError(f"--source: unknown source {source!r}. Valid choices: {', '.join(SOURCES)}")
        return [source]
    # An explicit folder is the only source tried: falling back silently would hide a wrong path.
    return ["dir"] if from_dir is not None else list(get_info(name).sources)


def _cached_ok(name: str, root: Path | None) -> bool:
    try:
        info = get_info(name)
        cache.check_arrays(info, cache.read_cache(info, root=root), origin=name)
    except DataError:
        return False
    return True


def fetch_result(name: str, *, from_dir: Path | None = None, source: str | None = None,
                 root: Path | None = None, force: bool = False) -> FetchResult:
    """Like :func:`fetch`, returning a :class:`FetchResult` (its ``summary()`` is for the CLI)."""
    info = get_info(name)
    order = _source_order(name, from_dir, source)
    folder = cache.dataset_dir(name, root)
    if not force and from_dir is None and source is None and _cached_ok(name, root):
        origin = cache.read_manifest(name, root=root).get("origin", "unknown source")
        return FetchResult(name, folder, "cache", origin, True, 0.0)
    errors = []
    for key in order:
        started = time.perf_counter()
        try:
            with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
                fetched = SOURCES[key](info, from_dir, Path(tmp))
            shas = cache.check_arrays(info, fetched.arrays, origin=fetched.origin)
        except DataError as err:
            log.info("source %s failed: %s", key, err)
            if len(order) == 1:
                raise
            errors.append(f"{key}: {err}")
            continue
        manifest = {"name": name, "source": key, "origin": fetched.origin, "sha256": shas,
                    "fetched_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        cache.write_cache(info, fetched.arrays, manifest, root=root)
        return FetchResult(name, folder, key, fetched.origin, False, time.perf_counter() - started)
    raise DataError(f"could not fetch {name}: tried {' | '.join(errors)}. "
                    f"If you have the IDX files, run `bench data fetch {name} --from DIR`")


def fetch(name: str, *, from_dir: Path | None = None, source: str | None = None,
          root: Path | None = None, force: bool = False) -> Path:
    """Get dataset ``name`` into the cache ``<root>/datasets/<name>/`` and return that folder.

    With ``from_dir`` only that folder of IDX files is read; with ``source`` (a key of
    :data:`bench.data.sources.SOURCES`) only that source is tried; otherwise the catalog's sources are
    tried in order. A valid cache is kept unless ``force`` (or an explicit folder or source) is given.
    """
    return fetch_result(name, from_dir=from_dir, source=source, root=root, force=force).path


def fetch_summary(name: str, *, from_dir: Path | None = None, source: str | None = None,
                  root: Path | None = None, force: bool = False) -> str:
    """Fetch and return a one-line human-readable summary; for `bench data fetch NAME [--from DIR]`."""
    return fetch_result(name, from_dir=from_dir, source=source, root=root, force=force).summary()
