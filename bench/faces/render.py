"""Render synthetic heads (``bench.faces.head``) at Multi-PIE's 13 yaws under a few lights.

Generator: each identity is a 3D head given as a signed distance function (a smooth union of ellipsoids, see
``head.py``). A view is an orthographic camera rotated about the head's vertical axis by the yaw, plus a
small pitch (a nuisance). Rays are sphere-traced in torch, batched over all views × pixels of one identity;
they start where they enter the head's bounding sphere and stop at the surface (distance < ``EPS``), on
leaving the sphere, or after ``max_steps``; finished rays are dropped from the batch every step, so the cost
is set by the few grazing rays, not by all of them. Normals come from four extra SDF evaluations
(tetrahedron differences). Shading is Lambert + ambient with the light direction fixed in the camera frame;
the geometry is traced once per view and shaded for every light. One sample per pixel, no anti-aliasing.
Background: a constant vertical grey gradient.

Conventions: yaw in degrees, positive = the face turned towards the image's right (nose moves right);
``LIGHTS[0]`` is frontal, neutral light (illumination 0 of the gallery).

Limits (a feature that wins here is not shown to win on real faces): no texture beyond flat albedo regions
(skin, hair, eyes, lips, brows), no expressions, no hair occlusion or strands, perfectly symmetric heads,
no shadows or specular highlights, no sensor noise; the face track's manifest loader exists so that users
with Multi-PIE or CFP can check a result on real images.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from bench.faces.head import Head

RENDERER_VERSION = "1"
EPS = 2e-3          # surface hit tolerance, head units (a 64-px image spans 2.3 units: 0.036 per pixel)
EXTENT = 1.15       # half-width of the orthographic view, head units
Y_CENTER = 0.0      # head-frame height at the image centre
_BOUND_C, _BOUND_R = (0.0, -0.05, 0.0), 1.5   # bounding sphere of every head (neck clipped there)
AMBIENT, DIFFUSE = 0.28, 0.80

# Camera frame (x right, y up, z towards the camera). Index 0 = frontal neutral light.
LIGHTS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.15, 1.0), (-0.85, 0.20, 0.50), (0.85, 0.20, 0.50), (0.0, 0.90, 0.45),
    (0.45, -0.35, 0.80), (-0.45, 0.55, 0.70), (0.60, 0.55, 0.60), (-0.60, -0.30, 0.75),
)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch ops on one intra-op thread, then restore the setting.

    The tracer's element-wise ops on ~50k-element tensors gain nothing from a second thread, and on a
    machine whose cores are shared (measured here: 2 cores, other jobs running) OpenMP's waiting makes
    each op about 40× slower. Rendering therefore runs single-threaded.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _rotation(yaw_deg: torch.Tensor, pitch_deg: torch.Tensor) -> torch.Tensor:
    """Head → camera rotation R = R_y(yaw) · R_x(pitch), float32 (V, 3, 3)."""
    a, b = torch.deg2rad(yaw_deg.float()), torch.deg2rad(pitch_deg.float())
    ca, sa, cb, sb = a.cos(), a.sin(), b.cos(), b.sin()
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    ry = torch.stack([ca, zero, sa, zero, one, zero, -sa, zero, ca], -1).view(-1, 3, 3)
    rx = torch.stack([one, zero, zero, zero, cb, -sb, zero, sb, cb], -1).view(-1, 3, 3)
    return ry @ rx


def _trace(head: Head, o: torch.Tensor, d: torch.Tensor, max_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sphere-trace rays o + t·d (each (3, M), head frame). Returns (hit (M,) bool, t (M,))."""
    m = o.shape[1]
    c = torch.tensor(_BOUND_C).view(3, 1)
    oc = o - c
    bq = (oc * d).sum(0)
    disc = bq * bq - (oc * oc).sum(0) + _BOUND_R ** 2
    t_hit = torch.full((m,), float("nan"))
    inside = disc > 0
    root = disc.clamp_min(0).sqrt()
    # state rows: ox oy oz dx dy dz t t_exit ray_index
    state = torch.cat([o, d, (-bq - root).clamp_min(0)[None], (-bq + root)[None],
                       torch.arange(m, dtype=torch.float32)[None]])[:, inside]
    for step in range(max_steps):
        if state.shape[1] == 0:
            break
        t = state[6]
        dist = head.sdf(state[0] + t * state[3], state[1] + t * state[4], state[2] + t * state[5])
        done = dist < (EPS if step < max_steps - 1 else 0.03)
        t_hit[state[8, done].long()] = t[done]
        keep = ~done & (t < state[7])
        state = state[:, keep]
        state[6] += dist[keep] * 0.95
    hit = ~torch.isnan(t_hit)
    return hit, torch.nan_to_num(t_hit)


def _normals(head: Head, p: torch.Tensor) -> torch.Tensor:
    """Unit surface normals (3, n) at points p (3, n), by tetrahedron differences."""
    h = 1.5e-3
    k = torch.tensor([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], dtype=torch.float32)  # (4, 3)
    q = (p[:, None, :] + h * k.T[:, :, None]).reshape(3, -1)      # (3, 4n)
    f = head.sdf(q[0], q[1], q[2]).view(4, -1)                    # (4, n)
    n = (k.T[:, :, None] * f[None]).sum(1)                        # (3, n)
    return n / n.norm(dim=0, keepdim=True).clamp_min(1e-8)


@single_thread()
def render_head(head: Head, yaws: Sequence[float] | torch.Tensor, *, pitches: torch.Tensor | None = None,
                lights: Sequence[Sequence[float]] = LIGHTS[:5], size: int = 64,
                max_steps: int = 40) -> torch.Tensor:
    """Render one head at V views under L lights.

    Args:
        head: the identity.
        yaws: (V,) degrees. pitches: (V,) degrees (default 0), positive = head tilted forward (chin down).
        lights: (L, 3) light directions in the camera frame (normalised here).
        size: image height = width in pixels.
    Returns:
        float32 (V, L, 3, size, size) in [0, 1].
    """
    yaw = torch.as_tensor(yaws, dtype=torch.float32).reshape(-1)
    pitch = torch.zeros_like(yaw) if pitches is None else torch.as_tensor(pitches, dtype=torch.float32)
    v, px = yaw.numel(), size * size
    rot = _rotation(yaw, pitch)                                            # (V, 3, 3) head→camera
    lin = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    gy, gx = torch.meshgrid(-lin * EXTENT + Y_CENTER, lin * EXTENT, indexing="ij")
    cam_o = torch.stack([gx.reshape(-1), gy.reshape(-1), torch.full((px,), 3.0)])   # (3, P)
    cam_d = torch.tensor([0.0, 0.0, -1.0])
    # camera → head frame is R^T; rays of all views side by side: (3, V·P)
    o = torch.einsum("vji,jp->ivp", rot, cam_o).reshape(3, -1)
    d = torch.einsum("vji,j->iv", rot, cam_d)[:, :, None].expand(3, v, px).reshape(3, -1)
    hit, t = _trace(head, o, d, max_steps)
    p = o[:, hit] + t[hit] * d[:, hit]
    n_head = _normals(head, p)
    view = torch.arange(v).repeat_interleave(px)[hit]
    n_cam = torch.einsum("nij,jn->in", rot[view], n_head)                  # (3, n)
    light = torch.nn.functional.normalize(torch.tensor(lights, dtype=torch.float32), dim=1)   # (L, 3)
    shade = AMBIENT + DIFFUSE * (light @ n_cam).clamp_min(0)               # (L, n)
    color = head.albedo[head.material(p[0], p[1], p[2])].T                  # (3, n)
    bg = (0.47 + 0.06 * (-lin)).view(1, 1, size, 1).expand(3, v, size, size).reshape(3, -1)
    out = bg[None].repeat(light.shape[0], 1, 1)                             # (L, 3, V·P)
    out[:, :, hit] = color[None] * shade[:, None, :]
    return out.view(-1, 3, v, size, size).permute(2, 0, 1, 3, 4).clamp(0, 1)
