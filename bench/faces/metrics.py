"""Face identification and verification metrics (numpy / scikit-learn; pure functions).

Conventions: a score is a similarity (higher = more alike, e.g. cosine); a pair is accepted when its score is
``>= threshold``. Inputs may be numpy arrays or CPU torch tensors.

Identification (closed set): a probe is correct at rank 1 when the best score among gallery entries of its own
identity is *strictly* greater than the best score among all other identities. Ties therefore count as errors,
which makes the result independent of the gallery's order (and a constant feature scores 0, not 1/G).
"""
from __future__ import annotations

import math
from typing import Any, Hashable

import numpy as np

from bench.errors import DataError
from bench.metrics import wilson_interval

FARS: dict[str, float] = {"tar_at_far_1e-2": 1e-2, "tar_at_far_1e-3": 1e-3}   # output key -> FAR


def _np(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def rank1_hits(scores: Any, probe_ids: Any, gallery_ids: Any) -> np.ndarray:
    """Per-probe rank-1 correctness.

    Args:
        scores: (P, G) similarities of each probe to each gallery entry.
        probe_ids: (P,) identity of each probe. gallery_ids: (G,) identity of each gallery entry.
    Returns:
        bool (P,). Raises :class:`DataError` if a probe's identity is not in the gallery.
    """
    s, p, g = _np(scores).astype(np.float64), _np(probe_ids), _np(gallery_ids)
    if s.shape != (p.shape[0], g.shape[0]):
        raise ValueError(f"scores must have shape (P, G) = ({p.shape[0]}, {g.shape[0]}), got {s.shape}")
    same = p[:, None] == g[None, :]
    missing = ~same.any(1)
    if missing.any():
        raise DataError(f"probe_ids: {int(missing.sum())} probes have identities not in the gallery "
                        f"(e.g. {p[missing][0]!r}); rank-1 needs a closed set")
    best_same = np.where(same, s, -np.inf).max(1)
    best_other = np.where(same, -np.inf, s).max(1) if (~same).any() else np.full(len(p), -np.inf)
    return best_same > best_other


def rank1(scores: Any, probe_ids: Any, gallery_ids: Any) -> float:
    """Rank-1 identification rate in [0, 1] (ties are errors); see :func:`rank1_hits` for shapes."""
    hits = rank1_hits(scores, probe_ids, gallery_ids)
    return float(hits.mean()) if hits.size else math.nan


def rank1_by_group(scores: Any, probe_ids: Any, gallery_ids: Any, groups: Any) -> dict[Hashable, dict[str, float]]:
    """Rank-1 per probe group (e.g. ``|yaw|``): group → {rank1, k, n, ci_low, ci_high} (95 % Wilson).

    ``groups`` is (P,); keys come out sorted.
    """
    hits, grp = rank1_hits(scores, probe_ids, gallery_ids), _np(groups)
    out: dict[Hashable, dict[str, float]] = {}
    for key in sorted(np.unique(grp).tolist()):
        h = hits[grp == key]
        k, n = int(h.sum()), int(h.size)
        low, high = wilson_interval(k, n)
        out[key] = {"rank1": k / n, "k": k, "n": n, "ci_low": low, "ci_high": high}
    return out


def threshold_at_far(impostor_scores: Any, far: float) -> float:
    """The lowest threshold at which at most ``floor(far · n)`` impostor scores are accepted (``>=``).

    Args:
        impostor_scores: (n,) scores of different-identity pairs. far: target false accept rate in [0, 1].
    Returns:
        A float threshold (``-inf`` when every impostor may be accepted). Ties never push the realised FAR
        above ``far``: the threshold sits just above the first impostor score that must be rejected.
    """
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"expected far in [0, 1], got {far}")
    imp = np.sort(_np(impostor_scores).astype(np.float64).ravel())[::-1]
    k = int(math.floor(far * imp.size + 1e-9))
    if k >= imp.size:
        return -math.inf
    return float(np.nextafter(imp[k], np.inf))


def accept_rate_at_threshold(scores: Any, threshold: float) -> float:
    """Fraction of ``scores`` (n,) that are ``>= threshold`` (TAR on genuine, FAR on impostor pairs)."""
    s = _np(scores).ravel()
    return float((s >= threshold).mean()) if s.size else math.nan


def _eer(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Equal error rate: where FPR = FNR on the ROC, linearly interpolated between its points."""
    diff = (1.0 - tpr) - fpr                       # decreasing from 1 to −1 as the threshold falls
    i = int(np.argmax(diff <= 0))
    if diff[i] == 0 or i == 0:
        return float(fpr[i])
    a = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fpr[i - 1] + a * (fpr[i] - fpr[i - 1]))


def verification(scores: Any, is_genuine: Any) -> dict[str, Any]:
    """Verification metrics of scored pairs.

    Args:
        scores: (n,) pair similarities. is_genuine: (n,) bool, True for same-identity pairs.
    Returns:
        ``auc``, ``eer`` (floats in [0, 1]), ``tar_at_far_1e-2`` and ``tar_at_far_1e-3`` (largest TAR over
        ROC thresholds with FAR ≤ the target; NaN when there are fewer than 1/FAR impostor pairs),
        ``n_genuine``, ``n_impostor`` (ints) and ``notes`` (why a value is NaN; "" when none is).
    """
    from sklearn.metrics import auc, roc_curve

    s, y = _np(scores).astype(np.float64).ravel(), _np(is_genuine).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and is_genuine must have the same length, got {s.shape} and {y.shape}")
    n_gen, n_imp = int(y.sum()), int((~y).sum())
    out: dict[str, Any] = {"n_genuine": n_gen, "n_impostor": n_imp}
    notes = []
    if n_gen == 0 or n_imp == 0:
        out.update({"auc": math.nan, "eer": math.nan, **dict.fromkeys(FARS, math.nan)})
        out["notes"] = f"need genuine and impostor pairs, got {n_gen} and {n_imp}"
        return out
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    out["auc"], out["eer"] = float(auc(fpr, tpr)), _eer(fpr, tpr)
    for key, far in FARS.items():
        need = int(round(1 / far))
        if n_imp < need:
            out[key] = math.nan
            notes.append(f"{key}: {n_imp} impostor pairs, need >= {need}")
        else:
            out[key] = float(tpr[fpr <= far + 1e-12].max())
    out["notes"] = "; ".join(notes)
    return out
