"""Real face data through a CSV manifest (one row per image), and builders for Multi-PIE and CFP.

Manifest columns (required): ``path`` (relative to the manifest's folder, or to ``root``), ``subject_id``
(int), ``yaw_deg`` (int in ``YAWS``, the dataset's own sign convention), ``illum`` (int, −1 = unknown),
``split`` (e.g. train/test). Extra columns are kept in the CSV and ignored by the loader (``dataset``,
``session``, ``recording``, ``camera``, ``pose_bin``, ``role``, ``view_type``, ``cfp_index``, ``fold``).

The licensed data cannot be downloaded here: users who have it run a builder on their copy, save the frame
with ``to_csv(..., index=False)``, and load it with :func:`load_manifest` (or the ``face-manifest`` dataset).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from bench.errors import DataError
from bench.faces.faceset import YAWS, FaceSet

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("path", "subject_id", "yaw_deg", "illum", "split")

# Multi-PIE camera (3-digit code in file names) -> yaw in degrees, the 13 head-height cameras (notes §5.1).
MULTIPIE_YAW: dict[str, int] = {
    "110": -90, "120": -75, "090": -60, "080": -45, "130": -30, "140": -15, "051": 0,
    "050": 15, "041": 30, "190": 45, "200": 60, "010": 75, "240": 90,
}
MULTIPIE_NEUTRAL_ILLUM = 7     # flash 07: the frontal, neutral light used for the gallery
_MPIE_NAME = re.compile(r"^(\d{3})_(\d{2})_(\d{2})_(\d{3})_(\d{2})\.png$")
CFP_PROFILE_YAW = 90           # CFP does not give profile yaws or their sign; profiles are recorded as 90


def _int_field(value: Any, field: str, where: str) -> int:
    try:
        number = float(value)
        if number != int(number):
            raise ValueError
        return int(number)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {field}: expected an integer, got {value!r}") from None


def _read_image(path: Path, size: int, crop: tuple[int, int, int, int] | None, where: str) -> torch.Tensor:
    """Image file → float32 (3, size, size) in [0, 1]; ``crop`` = (top, left, height, width) in source pixels."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"{where}: path: file not found: {path}")
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"{where}: path: cannot read image {path}: {err}") from err
    x = torch.from_numpy(arr).permute(2, 0, 1)
    if crop is not None:
        top, left, height, width = crop
        if top < 0 or left < 0 or top + height > x.shape[1] or left + width > x.shape[2]:
            raise DataError(f"{where}: crop {crop} does not fit the {x.shape[1]}×{x.shape[2]} image {path}")
        x = x[:, top:top + height, left:left + width]
    if x.shape[1:] != (size, size):
        x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False)[0]
    return x.clamp(0, 1)


def load_manifest(manifest: str | Path, split: str, *, size: int = 64, root: str | Path | None = None,
                  crop: tuple[int, int, int, int] | None = None, neutral_illum: int | None = None,
                  name: str | None = None) -> FaceSet:
    """Load the rows of ``split`` from a manifest CSV as a :class:`FaceSet`.

    Args:
        manifest: the CSV file. split: value of its ``split`` column to load.
        size: output height = width; images are resized (bilinear, antialiased) after the optional ``crop``.
        root: folder that ``path`` is relative to (default: the manifest's folder).
        neutral_illum: the dataset's neutral-light index (Multi-PIE: 7); it is swapped with 0 so that
            ``illum == 0`` means neutral light, as in every FaceSet.
        name: FaceSet name (default: the ``dataset`` column if it has one value, else the file stem).
    Returns:
        x float32 (N, 3, size, size) in [0, 1]; subject remapped to 0..K−1 in ascending ``subject_id``.
    Raises:
        DataError naming the CSV line and field for a missing column, a bad value or a missing image.
    """
    import pandas as pd

    manifest = Path(manifest)
    try:
        frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{manifest}: cannot read manifest: {err}") from err
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{manifest}: missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED)}")
    rows = frame[frame["split"] == split]
    if rows.empty:
        valid = sorted(set(frame["split"]))
        raise DataError(f"split: no rows with split {split!r} in {manifest}. Valid choices: {', '.join(valid)}")
    base = Path(root) if root is not None else manifest.parent
    images, subjects, yaws, illums = [], [], [], []
    for index, row in rows.iterrows():
        where = f"{manifest} line {int(index) + 2}"       # + header line, 1-based
        subjects.append(_int_field(row["subject_id"], "subject_id", where))
        yaw = _int_field(row["yaw_deg"], "yaw_deg", where)
        if yaw not in YAWS:
            raise DataError(f"{where}: yaw_deg: {yaw} is not one of {', '.join(map(str, YAWS))}")
        yaws.append(yaw)
        illum = _int_field(row["illum"], "illum", where)
        if neutral_illum is not None and illum in (0, neutral_illum):
            illum = neutral_illum if illum == 0 else 0
        illums.append(illum)
        images.append(_read_image(base / row["path"], size, crop, where))
    ids = sorted(set(subjects))
    remap = {s: i for i, s in enumerate(ids)}
    x = torch.stack(images)
    subject = torch.tensor([remap[s] for s in subjects], dtype=torch.int64)
    yaw_t, illum_t = torch.tensor(yaws, dtype=torch.int64), torch.tensor(illums, dtype=torch.int64)
    digest = hashlib.sha256()
    for t in ((x * 255).round().to(torch.uint8), subject, yaw_t, illum_t):
        digest.update(t.contiguous().numpy().tobytes())
    if name is None:
        names = set(frame["dataset"]) if "dataset" in frame.columns else set()
        name = names.pop() if len(names) == 1 else manifest.stem
    return FaceSet(x=x, subject=subject, yaw=yaw_t, illum=illum_t, name=name, split=split,
                   sha256=digest.hexdigest())


def build_multipie_manifest(root: str | Path, *, n_train_subjects: int = 200) -> "pd.DataFrame":
    """Manifest of a Multi-PIE tree: every ``<subj>_<sess>_<rec>_<cam>_<illum>.png`` under ``root``.

    Only the 13 head-height cameras are kept (08_1 and 19_1 are skipped). ``split``: Multi-PIE setting 2,
    the first ``n_train_subjects`` subject ids (ascending) are ``train``, the rest ``test``. ``role``:
    ``gallery`` for each subject's first session/recording at camera 05_1 and illumination 07, else ``probe``.
    ``illum`` is Multi-PIE's own 0..19 (load with ``neutral_illum=7``). Paths are relative to ``root``.
    """
    import pandas as pd

    root = Path(root)
    records = []
    for path in sorted(root.rglob("*.png")):
        match = _MPIE_NAME.match(path.name)
        if not match or match.group(4) not in MULTIPIE_YAW:
            continue
        subj, sess, rec, cam, illum = match.groups()
        yaw = MULTIPIE_YAW[cam]
        records.append({"path": path.relative_to(root).as_posix(), "dataset": "multipie", "subject_id": int(subj),
                        "session": int(sess), "recording": int(rec), "camera": f"{cam[:2]}_{cam[2]}",
                        "yaw_deg": yaw, "pose_bin": (yaw + 90) // 15, "illum": int(illum)})
    if not records:
        raise DataError(f"{root}: no Multi-PIE images (<subj>_<sess>_<rec>_<cam>_<illum>.png) found")
    frame = pd.DataFrame.from_records(records)
    train_ids = sorted(frame["subject_id"].unique())[:n_train_subjects]
    frame["split"] = frame["subject_id"].isin(train_ids).map({True: "train", False: "test"})
    frontal = frame[(frame["camera"] == "05_1") & (frame["illum"] == MULTIPIE_NEUTRAL_ILLUM)]
    first = frontal.sort_values(["subject_id", "session", "recording"]).groupby("subject_id").head(1).index
    frame["role"] = "probe"
    frame.loc[first, "role"] = "gallery"
    return frame[["path", "dataset", "subject_id", "session", "recording", "camera", "yaw_deg", "pose_bin",
                  "illum", "split", "role"]]


def _cfp_list(protocol: Path, view: str) -> dict[int, str]:
    """``Pair_list_<F|P>.txt``: index k → image path relative to the CFP root."""
    path = protocol / f"Pair_list_{view}.txt"
    if not path.is_file():
        raise DataError(f"{path}: CFP protocol file not found (expected <root>/Protocol/Pair_list_{view}.txt)")
    out = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{path} line {number}: expected 'k path', got {line!r}")
        # normpath, not resolve: Data/ may be a symlink to another disk
        rel = Path(os.path.normpath(protocol / parts[1])).relative_to(os.path.normpath(protocol.parent))
        out[_int_field(parts[0], "k", f"{path} line {number}")] = rel.as_posix()
    return out


def build_cfp_pairs(root: str | Path) -> "pd.DataFrame":
    """CFP pairs: columns ``protocol`` (FF/FP), ``fold`` (1..10), ``a_index`` (F list), ``b_index`` (F list
    for FF, P list for FP), ``same`` (bool), from ``Protocol/Split/<FF|FP>/<nn>/{same,diff}.txt``."""
    import pandas as pd

    records = []
    split_dir = Path(root) / "Protocol" / "Split"
    for path in sorted(split_dir.glob("F[FP]/[0-9][0-9]/*.txt")):
        if path.stem not in ("same", "diff"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            a, _, b = line.partition(",")
            where = f"{path} line {number}"
            records.append({"protocol": path.parent.parent.name, "fold": int(path.parent.name),
                            "a_index": _int_field(a, "a", where), "b_index": _int_field(b, "b", where),
                            "same": path.stem == "same"})
    return pd.DataFrame.from_records(records, columns=["protocol", "fold", "a_index", "b_index", "same"])


def build_cfp_manifest(root: str | Path) -> "pd.DataFrame":
    """Manifest of a CFP tree from ``Protocol/Pair_list_{F,P}.txt`` (paths relative to ``root``).

    ``subject_id`` = the numeric identity folder, ``yaw_deg`` 0 for frontal and ``CFP_PROFILE_YAW`` (90,
    sign unknown) for profile, ``illum`` −1, ``split`` ``test`` for all, ``view_type`` frontal/profile,
    ``cfp_index`` the F/P list index (for :func:`build_cfp_pairs`), ``fold`` the protocol fold (1..10) whose
    pairs use this identity (0 if none; the folds are identity-disjoint).
    """
    import pandas as pd

    root = Path(root)
    protocol = root / "Protocol"
    lists = {"frontal": _cfp_list(protocol, "F"), "profile": _cfp_list(protocol, "P")}
    records = []
    for view, entries in lists.items():
        for k, rel in sorted(entries.items()):
            parts = Path(rel).parts
            if len(parts) < 3 or parts[-2] != view:
                raise DataError(f"{protocol}/Pair_list_{view[0].upper()}.txt: index {k}: unexpected path {rel!r}")
            records.append({"path": rel, "dataset": "cfp", "subject_id": _int_field(parts[-3], "subject", rel),
                            "yaw_deg": 0 if view == "frontal" else CFP_PROFILE_YAW, "illum": -1, "split": "test",
                            "view_type": view, "cfp_index": k})
    frame = pd.DataFrame.from_records(records)
    fold_of: dict[int, int] = {}
    subject_by = {(r["view_type"], r["cfp_index"]): r["subject_id"] for r in records}
    for pair in build_cfp_pairs(root).itertuples():
        b_view = "frontal" if pair.protocol == "FF" else "profile"
        for key in (("frontal", pair.a_index), (b_view, pair.b_index)):
            if key in subject_by:
                fold_of.setdefault(subject_by[key], pair.fold)
    frame["fold"] = frame["subject_id"].map(fold_of).fillna(0).astype(int)
    return frame


@dataclass(frozen=True)
class ManifestInfo:
    """Registry entry for data supplied as a manifest CSV (``load(split, manifest=..., ...)``)."""

    name: str = "face-manifest"
    track: str = "faces"
    required_columns: tuple[str, ...] = REQUIRED

    def load(self, split: str, *, manifest: str | Path | None = None, **options: Any) -> FaceSet:
        """:func:`load_manifest` ``(manifest, split, **options)``; ``manifest`` is required."""
        if manifest is None:
            raise DataError("manifest: face-manifest needs the path of a manifest CSV (option 'manifest')")
        return load_manifest(manifest, split, **options)


MANIFEST = ManifestInfo()
