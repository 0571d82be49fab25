"""Parametric synthetic heads: identity parameters and the head's signed distance function.

A head lives in its own frame: ``x`` to the image right of a frontal view, ``y`` up, ``z`` towards a frontal
camera, about unit size (crown at y ≈ 1.1, chin at y ≈ −0.9). Its surface is a smooth union of ellipsoids
(cranium, hair cap, jaw, chin, cheeks, nose bridge and tip, brows, eyeballs, lips, ears, neck) with the eye
sockets carved out; paired parts are mirrored with ``|x|``, so heads are left/right symmetric.

An identity is one row of ``PARAM_NAMES`` values drawn independently and uniformly from ``PARAM_RANGES``
(shape: 29 numbers; appearance: 7 numbers that pick skin, hair, iris and lip colours). Everything here is
plain arithmetic on ``(N,)`` float32 tensors of point coordinates, so it batches over pixels and views.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# name -> (low, high); an identity is one independent uniform draw per row.
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "head_w": (0.60, 0.78), "head_h": (0.82, 0.98), "head_d": (0.80, 0.94),
    "jaw_w": (0.42, 0.62), "jaw_h": (0.40, 0.56), "jaw_fwd": (-0.06, 0.08),
    "chin_w": (0.10, 0.22), "chin_drop": (0.00, 0.12),
    "cheek_x": (0.26, 0.40), "cheek_r": (0.13, 0.22),
    "eye_sep": (0.20, 0.32), "eye_r": (0.065, 0.10), "eye_y": (-0.02, 0.12),
    "brow_dy": (0.09, 0.17), "brow_len": (0.09, 0.17), "brow_th": (0.02, 0.05), "brow_tilt": (-0.35, 0.35),
    "nose_len": (0.10, 0.26), "nose_w": (0.05, 0.11), "nose_h": (0.13, 0.26),
    "mouth_w": (0.12, 0.25), "lip_th": (0.02, 0.05), "mouth_y": (-0.50, -0.38),
    "ear_h": (0.12, 0.22), "ear_out": (0.00, 0.08), "ear_y": (-0.15, 0.05),
    "hair_line": (0.00, 0.25), "hair_thick": (0.00, 0.12), "neck_w": (0.30, 0.42),
    "skin_tone": (0.0, 1.0), "skin_hue": (-1.0, 1.0), "hair_col": (0.0, 1.0), "hair_shade": (0.0, 1.0),
    "iris_col": (0.0, 1.0), "lip_tint": (0.0, 1.0), "sclera": (0.85, 0.95),
}
PARAM_NAMES: tuple[str, ...] = tuple(PARAM_RANGES)

SKIN, HAIR, SCLERA, IRIS, PUPIL, LIPS, BROW = range(7)
_SKIN_LIGHT, _SKIN_DARK = (0.96, 0.80, 0.68), (0.36, 0.23, 0.16)
_HAIR = ((0.06, 0.05, 0.05), (0.30, 0.19, 0.11), (0.55, 0.36, 0.18), (0.85, 0.72, 0.45),
         (0.62, 0.28, 0.12), (0.70, 0.70, 0.70))
_IRIS = ((0.30, 0.18, 0.08), (0.25, 0.42, 0.62), (0.32, 0.45, 0.25), (0.12, 0.08, 0.05))


def sample_identities(n: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``n`` identities: float32 tensor (n, len(PARAM_NAMES)) of values inside ``PARAM_RANGES``."""
    lo = torch.tensor([r[0] for r in PARAM_RANGES.values()])
    hi = torch.tensor([r[1] for r in PARAM_RANGES.values()])
    u = torch.rand(n, len(PARAM_NAMES), generator=generator)
    return lo + u * (hi - lo)


@dataclass(frozen=True)
class Ellipsoid:
    """Centre and radii, head frame."""

    c: tuple[float, float, float]
    r: tuple[float, float, float]

    def sdf(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Approximate signed distance (a bound near the surface, as in Quilez' ellipsoid SDF); shape (N,)."""
        px, py, pz = (x - self.c[0]) / self.r[0], (y - self.c[1]) / self.r[1], (z - self.c[2]) / self.r[2]
        k0 = torch.sqrt(px * px + py * py + pz * pz)
        qx, qy, qz = px / self.r[0], py / self.r[1], pz / self.r[2]
        k1 = torch.sqrt(qx * qx + qy * qy + qz * qz).clamp_min(1e-6)
        return k0 * (k0 - 1.0) / k1


def _smin(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _smax(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    return -_smin(-a, -b, k)


class Head:
    """One identity's geometry and albedos, built from a row of ``sample_identities``."""

    def __init__(self, row: torch.Tensor) -> None:
        p = dict(zip(PARAM_NAMES, row.tolist()))
        self.p = p
        cy, cz = 0.12, -0.10
        w, h, d = p["head_w"], p["head_h"], p["head_d"]

        def face_z(x: float, y: float) -> float:  # depth of the cranium's front surface at (x, y)
            return cz + d * math.sqrt(max(0.05, 1.0 - (x / w) ** 2 - ((y - cy) / h) ** 2))

        self.cranium = Ellipsoid((0.0, cy, cz), (w, h, d))
        t = p["hair_thick"]
        self.hair_cap = Ellipsoid((0.0, cy + 0.6 * t, cz - 0.4 * t), (w + t, h + 0.6 * t, d + t))
        # Hair covers points with y·cos a − z·sin a > hair_line: a high line at the face, low at the back.
        self.hair_a = (math.cos(0.6), math.sin(0.6), p["hair_line"])
        jy = -0.36
        self.jaw = Ellipsoid((0.0, jy, 0.10 + p["jaw_fwd"]), (p["jaw_w"], p["jaw_h"], 0.56))
        jaw_front = 0.10 + p["jaw_fwd"] + 0.56
        self.chin = Ellipsoid((0.0, jy - p["jaw_h"] * 0.78 - p["chin_drop"], jaw_front - 0.20),
                              (p["chin_w"], 0.13, 0.16))
        self.cheek = Ellipsoid((p["cheek_x"], -0.10, face_z(p["cheek_x"], -0.10) - 0.6 * p["cheek_r"]),
                               (p["cheek_r"], 0.85 * p["cheek_r"], 0.8 * p["cheek_r"]))
        ex, ey, er = p["eye_sep"], p["eye_y"], p["eye_r"]
        ez = face_z(ex, ey)
        self.socket = Ellipsoid((ex, ey, ez + 0.02), (1.7 * er, 1.35 * er, 1.4 * er))
        self.eye_c, self.eye_r = (ex, ey, ez - 0.75 * er), er
        self.brow = Ellipsoid((ex, ey + p["brow_dy"], face_z(ex, ey + p["brow_dy"]) + 0.01),
                              (p["brow_len"], p["brow_th"], 0.05))
        self.brow_tilt, self.brow_x = p["brow_tilt"], ex
        ny = ey - 0.5 * p["nose_h"]
        nz = face_z(0.0, ny)
        self.bridge = Ellipsoid((0.0, ny, nz - 0.05), (0.55 * p["nose_w"], p["nose_h"], p["nose_len"] * 0.7 + 0.05))
        self.tip = Ellipsoid((0.0, ny - 0.8 * p["nose_h"], nz + 0.55 * p["nose_len"]),
                             (p["nose_w"], 0.8 * p["nose_w"], 0.45 * p["nose_len"]))
        my = p["mouth_y"]
        mz = 0.10 + p["jaw_fwd"] + 0.56 * math.sqrt(max(0.05, 1.0 - ((my - jy) / p["jaw_h"]) ** 2))
        self.lips = Ellipsoid((0.0, my, mz), (p["mouth_w"], p["lip_th"], 0.05))
        self.ear = Ellipsoid((w + 0.01 + p["ear_out"], p["ear_y"], cz + 0.05),
                             (0.04 + 0.5 * p["ear_out"], p["ear_h"], 0.55 * p["ear_h"]))
        self.neck = Ellipsoid((0.0, -1.0, -0.15), (p["neck_w"], 0.65, 1.05 * p["neck_w"]))
        self.albedo = self._albedos(p)

    @staticmethod
    def _albedos(p: dict[str, float]) -> torch.Tensor:
        """Material → RGB albedo, float32 (7, 3) in [0, 1]."""
        s = p["skin_tone"]
        skin = torch.tensor([a + (b - a) * s for a, b in zip(_SKIN_LIGHT, _SKIN_DARK)])
        skin = (skin * torch.tensor([1.0 + 0.06 * p["skin_hue"], 1.0, 1.0 - 0.06 * p["skin_hue"]])).clamp(0, 1)
        hair = torch.tensor(_HAIR[min(int(p["hair_col"] * len(_HAIR)), len(_HAIR) - 1)])
        hair = hair * (0.75 + 0.5 * p["hair_shade"])
        iris = torch.tensor(_IRIS[min(int(p["iris_col"] * len(_IRIS)), len(_IRIS) - 1)])
        lips = skin * torch.tensor([0.95, 0.62, 0.62]) * (0.8 + 0.25 * p["lip_tint"])
        sclera = torch.full((3,), p["sclera"])
        pupil = torch.full((3,), 0.04)
        return torch.stack([skin, hair.clamp(0, 1), sclera, iris, pupil, lips.clamp(0, 1), hair * 0.7])

    def _parts(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        ax = x.abs()
        ca, sa, line = self.hair_a
        hair = torch.maximum(self.hair_cap.sdf(x, y, z), line - (y * ca - z * sa))
        face = _smin(_smin(self.cranium.sdf(x, y, z), self.jaw.sdf(x, y, z), 0.10), self.chin.sdf(x, y, z), 0.08)
        face = _smin(face, self.cheek.sdf(ax, y, z), 0.08)
        face = _smax(face, -self.socket.sdf(ax, y, z), 0.04)
        ex, ey, ez = self.eye_c
        eye = torch.sqrt((ax - ex) ** 2 + (y - ey) ** 2 + (z - ez) ** 2) - self.eye_r
        brow = self.brow.sdf(ax, y - self.brow_tilt * (ax - self.brow_x), z)
        nose = _smin(self.bridge.sdf(x, y, z), self.tip.sdf(x, y, z), 0.04)
        return {"face": face, "hair": hair, "eye": eye, "brow": brow, "nose": nose,
                "lips": self.lips.sdf(x, y, z), "ear": self.ear.sdf(ax, y, z), "neck": self.neck.sdf(x, y, z)}

    def sdf(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Signed distance (negative inside) of points ``(x, y, z)``, each (N,) float32; returns (N,)."""
        q = self._parts(x, y, z)
        d = _smin(q["face"], q["hair"], 0.03)
        d = _smin(d, q["nose"], 0.05)
        d = _smin(d, q["neck"], 0.12)
        d = _smin(d, q["ear"], 0.03)
        d = _smin(d, q["brow"], 0.02)
        d = _smin(d, q["lips"], 0.02)
        return torch.minimum(d, q["eye"])

    def material(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Material index (N,) int64 of surface points: the closest part decides, hair by the hair line."""
        q = self._parts(x, y, z)
        ca, sa, line = self.hair_a
        mat = torch.full_like(x, SKIN, dtype=torch.int64)
        above_line = (y * ca - z * sa) > line
        skinlike = torch.stack([q["face"], q["nose"], q["ear"], q["neck"]]).amin(0)
        mat[(q["hair"] <= skinlike + 0.01) | (above_line & (q["face"] <= skinlike + 1e-4))] = HAIR
        mat[(q["lips"] < 0.01) & (q["lips"] <= q["face"] + 0.01)] = LIPS
        mat[(q["brow"] < 0.01) & (q["brow"] <= q["face"] + 0.01)] = BROW
        on_eye = q["eye"] < 0.01
        ex, ey, ez = self.eye_c
        cos_fwd = (z - ez) / torch.sqrt((x.abs() - ex) ** 2 + (y - ey) ** 2 + (z - ez) ** 2).clamp_min(1e-6)
        mat[on_eye] = SCLERA
        mat[on_eye & (cos_fwd > 0.80)] = IRIS
        mat[on_eye & (cos_fwd > 0.95)] = PUPIL
        return mat
