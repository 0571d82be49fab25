"""``FaceSet``: the face track's in-memory dataset (images, identities, yaw, illumination).

Every face source (the synthetic renderer, a Multi-PIE or CFP manifest) returns one of these, and the face
models and the face track consume nothing else.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from bench.errors import DataError

YAWS: tuple[int, ...] = tuple(range(-90, 91, 15))   # Multi-PIE's 13 head-height cameras, degrees


def pose_index(yaw: int) -> int:
    """Index 0..12 of a yaw in ``YAWS`` (−90 → 0, 0 → 6, 90 → 12); other values raise :class:`DataError`."""
    yaw = int(yaw)
    if yaw not in YAWS:
        raise DataError(f"yaw_deg: {yaw} is not a Multi-PIE yaw. Valid choices: {', '.join(map(str, YAWS))}")
    return (yaw + 90) // 15


@dataclass(frozen=True)
class FaceSet:
    """Face images with their labels.

    Attributes:
        x: float32 (N, 3, H, W) in [0, 1].
        subject: int64 (N,) identity labels, contiguous 0..K−1 in a loaded set. ``select`` keeps the labels
            of the parent set, so a gallery and a probe subset of one set stay comparable.
        yaw: int64 (N,) degrees, each in ``YAWS``.
        illum: int64 (N,) illumination index, 0 = neutral frontal light (−1 = unknown, from manifests).
        name: dataset name ("synth-faces", "multipie", …).
        split: "train" or "test" (or the manifest's split name).
        sha256: identifies the content: the cache file's digest, or a digest derived from the parent's
            digest and the selected indices.
    """

    x: torch.Tensor
    subject: torch.Tensor
    yaw: torch.Tensor
    illum: torch.Tensor
    name: str
    split: str
    sha256: str

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.x.ndim != 4 or self.x.dtype != torch.float32:
            raise DataError(f"{self.name}/{self.split}: x must be float32 (N, C, H, W), "
                            f"got {self.x.dtype} {tuple(self.x.shape)}")
        for field in ("subject", "yaw", "illum"):
            value = getattr(self, field)
            if value.shape != (n,) or value.dtype != torch.int64:
                raise DataError(f"{self.name}/{self.split}: {field} must be int64 ({n},), "
                                f"got {value.dtype} {tuple(value.shape)}")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def num_subjects(self) -> int:
        """Number of distinct identities present."""
        return int(self.subject.unique().numel())

    def select(self, mask: torch.Tensor) -> "FaceSet":
        """The subset given by a boolean mask (N,) or an int64 index tensor; labels are kept as they are."""
        mask = torch.as_tensor(mask)
        index = mask.nonzero().view(-1) if mask.dtype == torch.bool else mask.long().view(-1)
        if mask.dtype == torch.bool and mask.shape != (len(self),):
            raise DataError(f"select: boolean mask must have shape ({len(self)},), got {tuple(mask.shape)}")
        digest = hashlib.sha256(self.sha256.encode() + index.numpy().astype("<i8").tobytes()).hexdigest()
        return FaceSet(x=self.x[index], subject=self.subject[index], yaw=self.yaw[index],
                       illum=self.illum[index], name=self.name, split=self.split, sha256=digest)

    def __repr__(self) -> str:
        shape = "×".join(map(str, self.x.shape))
        return (f"FaceSet(name={self.name!r}, split={self.split!r}, x={shape}, "
                f"subjects={self.num_subjects}, sha256={self.sha256[:12]}…)")
