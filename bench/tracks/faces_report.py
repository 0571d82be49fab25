"""Faces-track reporting: tidy rows of one record (with ``yaw``) and the faces report extension.

Tidy conventions (``results.csv``):

* ``yaw`` — for the plain metrics (``rank1``, ``auc``, ``eer``, ``tar_at_far_1e-2``, ``tar_at_far_1e-3``,
  ``attack_success_rate``, ``accept_rate_at_clean_threshold``) it is the **|yaw| group**: 15 means the probes
  at −15° and +15° pooled, as the DR-GAN paper's Multi-PIE tables; empty = all probes. ``rank1_signed_yaw``
  carries the signed camera yaw (−90 … 90).
* ``threat`` — "none" on clean rows; on attack rows the attack *goal*, "dodging" (untargeted, move away from
  the own gallery identity) or "impersonation" (targeted at a fixed other identity). The faces track has no
  defenses, so the column is free for the goal.
* Proportions (rank-1, success and accept rates) carry 95 % Wilson intervals recomputed from the stored
  per-probe outcomes; the verification numbers come from the record's metrics (they need every impostor
  score, which records do not keep).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.report.tidy import measurement

VERIFICATION = ("auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3")


def outcomes(rows: dict[str, list], *, targeted: bool) -> dict[str, np.ndarray]:
    """Per-probe flags of an attack record: eligible (the attack had work to do), success, accepted
    (score at the clean threshold, the caller compares), from the stored rows."""
    clean_hit, adv_hit = np.array(rows["clean_hit"], bool), np.array(rows["adv_hit"], bool)
    if targeted:
        target = np.array(rows["target"])
        eligible, success = np.array(rows["clean_pred"]) != target, np.array(rows["adv_pred"]) == target
        score, clean_score = np.array(rows["adv_target_score"], float), np.array(rows["clean_target_score"], float)
    else:
        eligible, success = clean_hit, ~adv_hit
        score, clean_score = np.array(rows["adv_genuine"], float), np.array(rows["clean_genuine"], float)
    return {"clean_hit": clean_hit, "adv_hit": adv_hit, "eligible": eligible, "success": success,
            "score": score, "clean_score": clean_score}


def summarize(rows: dict[str, list], *, threshold: float, targeted: bool) -> dict[str, float]:
    """Attack-cell metrics from per-probe rows. Dodging success: a rank-1 hit turned into a miss, among the
    probes hit clean; impersonation success: top-1 == target, among probes whose clean top-1 was not it."""
    o = outcomes(rows, targeted=targeted)
    l2, ok = np.array(rows["l2"], float), o["eligible"] & o["success"]
    n_ok = int(o["eligible"].sum())
    return {"rank1": float(o["adv_hit"].mean()), "clean_rank1": float(o["clean_hit"].mean()),
            "attack_success_rate": float(o["success"][o["eligible"]].mean()) if n_ok else math.nan,
            "accept_rate_at_clean_threshold": float((o["score"] >= threshold).mean()),
            "clean_accept_rate_at_clean_threshold": float((o["clean_score"] >= threshold).mean()),
            "threshold": threshold, "linf_max": float(np.max(rows["linf"], initial=0.0)),
            "linf_mean": float(np.mean(rows["linf"])), "l2_mean": float(l2.mean()),
            "l2_median_success": float(np.median(l2[ok])) if ok.any() else math.nan}


def _proportions(metric: str, flags: np.ndarray, groups: np.ndarray | None, **where: Any) -> list[dict]:
    """One row over all probes (yaw empty) and, with ``groups``, one per group value (yaw = the value)."""
    out = []
    if flags.size:
        out.append(measurement(metric, flags.mean(), k=int(flags.sum()), n=int(flags.size), yaw=None, **where))
    if groups is not None:
        for g in sorted(set(groups.tolist())):
            f = flags[groups == g]
            out.append(measurement(metric, f.mean(), k=int(f.sum()), n=int(f.size), yaw=int(g), **where))
    return out


def tidy_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Tidy rows of one faces record (see the module docstring for ``yaw`` and ``threat``)."""
    cfg, rows, metrics = record["config"], record["per_sample"], record["metrics"]
    signed = np.array(rows["yaw"], int)
    groups = np.abs(signed)
    if cfg["attack"] == "none":
        hits = np.array(rows["hit"], bool)
        out = _proportions("rank1", hits, groups)
        for yaw in sorted(set(signed.tolist())):
            f = hits[signed == yaw]
            out.append(measurement("rank1_signed_yaw", f.mean(), k=int(f.sum()), n=int(f.size), yaw=yaw))
        for name, v in metrics["verification"].items():
            yaw = None if name == "all" else int(name)
            pairs = v["n_genuine"] + v["n_impostor"]
            out += [measurement(m, v[m], n=pairs, yaw=yaw) for m in VERIFICATION]
        return out
    goal = {"threat": "impersonation" if cfg["targeted"] else "dodging"}
    o = outcomes(rows, targeted=cfg["targeted"])
    threshold = metrics["threshold"]
    out = _proportions("rank1", o["adv_hit"], groups, **goal)
    for yaw in sorted(set(signed.tolist())):
        f = o["adv_hit"][signed == yaw]
        out.append(measurement("rank1_signed_yaw", f.mean(), k=int(f.sum()), n=int(f.size), yaw=yaw, **goal))
    out += _proportions("clean_rank1", o["clean_hit"], None, **goal)
    e = o["eligible"]
    out += _proportions("attack_success_rate", o["success"][e], groups[e], **goal)
    out += _proportions("accept_rate_at_clean_threshold", o["score"] >= threshold, groups, **goal)
    out += _proportions("clean_accept_rate_at_clean_threshold", o["clean_score"] >= threshold, None, **goal)
    out += [measurement(m, metrics[m], n=len(signed), yaw=None, **goal)
            for m in ("linf_mean", "l2_mean", "l2_median_success") if m in metrics]
    return out


def extend_report(report: Any, records: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    """Fill ``report.table``, ``report.texts`` and ``report.figures`` for a faces spec (pure function of
    the records and the stored spec)."""
    from bench.tracks import faces_plots, faces_tables

    tidy, title = report.tidy, report.title
    paper = [p for p in spec.get("paper", [])]
    report.table = faces_tables.rank1_table(tidy, paper)
    report.texts = {"table.md": faces_tables.markdown(report.table, title=title, notes=spec.get("notes", "")),
                    "table.tex": faces_tables.latex(report.table, title=title),
                    "rank1_by_yaw.md": faces_tables.signed_yaw_markdown(tidy, title=title),
                    "verification.md": faces_tables.verification_markdown(tidy, records, title=title)}
    if (tidy["attack"] != "none").any():
        report.texts["robustness.md"] = faces_tables.robustness_markdown(tidy, title=title)
    report.figures.update(faces_plots.figures(tidy, records, title=title))
