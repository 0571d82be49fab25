"""One cell of the faces track: (face dataset, face model, attack, ε, goal) → per-probe outcomes.

Data flow: test identities → gallery (one frontal, neutral-light image each) and probes (``n`` per signed
yaw bin) → the trained face model's L2-normalised features → cosine scores (probes × gallery).

* Clean cell (attack ``none``): rank-1 per probe (ties are errors, ``bench.faces.metrics``), and
  verification of gallery against each |yaw| group and all probes (genuine = same identity, impostor = every
  other gallery identity): ROC AUC, EER, TAR at FAR 1e-2 / 1e-3 (NaN where there are fewer than 1/FAR
  impostor pairs), and the ROC sampled at log-spaced FARs (the full score matrix is not stored).
* Attack cell: the recognizer as a classifier over gallery entries (:class:`~bench.faces.gallery.GalleryHead`)
  under the registered attack, with the threat model enforced by the harness. Untargeted = dodging (label =
  own gallery entry); targeted = impersonation (target = a fixed other identity per probe). Outcomes are
  recomputed with the harness's own forward pass. The verification threshold is fixed at
  ``settings.threshold_far`` on the clean impostor scores of *all* probes of this model, so it is identical
  in every cell of the model and the cell stays a pure function of its config.

Per-probe rows (``per_sample``): ``probe`` (index in the test set), ``subject``, ``yaw``, ``illum``; clean cells
add ``pred`` (top-1 gallery identity), ``hit``, ``genuine`` (score with the own gallery image) and
``max_impostor``; attack cells add ``clean_pred``/``adv_pred``, ``clean_hit``/``adv_hit``,
``clean_genuine``/``adv_genuine``, ``adv_max_impostor``, ``linf``/``l2`` (perturbation norms) and, for
impersonation, ``target``, ``clean_target_score``/``adv_target_score``. Clean records also keep, in
``notes["images"]``, the data contact sheet and (models with a generator) the rotation sheet as PNG text, so
that the report, a pure function of the records, can draw them.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from bench.cells import NONE, Cell
from bench.faces.faceset import FaceSet
from bench.faces.gallery import GalleryHead
from bench.faces.metrics import rank1_hits, threshold_at_far, verification
from bench.invariants import enforce, norms
from bench.progress import progress
from bench.registry import ATTACKS
from bench.tracks import faces_setup as setup
from bench.tracks.faces_report import summarize
from bench.tracks.faces_settings import check_settings

log = logging.getLogger(__name__)
ROC_FARS = tuple(float(f) for f in np.logspace(-4, 0, 33))   # where the stored ROC is sampled


def _roc_points(scores: np.ndarray, genuine: np.ndarray) -> dict[str, list[float]]:
    """TAR at log-spaced FARs (only FARs the impostor count can resolve): a compact, exact ROC envelope."""
    from sklearn.metrics import roc_curve

    if genuine.all() or not genuine.any():
        return {"far": [], "tar": []}
    fpr, tpr, _ = roc_curve(genuine, scores, drop_intermediate=False)
    n_imp = int((~genuine).sum())
    fars = [f for f in ROC_FARS if f * n_imp >= 1 - 1e-9]
    return {"far": fars, "tar": [float(tpr[fpr <= f + 1e-12].max()) for f in fars]}


def _verification(scores: torch.Tensor, own: torch.Tensor, groups: np.ndarray) -> dict[str, dict[str, Any]]:
    """Verification per |yaw| group (keys "0".."90") and over all probes ("all")."""
    s = scores.numpy().astype(np.float64)
    genuine = np.zeros_like(s, dtype=bool)
    genuine[np.arange(len(own)), own.numpy()] = True
    out = {}
    for name, rows in [*((str(g), groups == g) for g in sorted(set(groups.tolist()))), ("all", slice(None))]:
        flat_s, flat_g = s[rows].ravel(), genuine[rows].ravel()
        out[name] = {**verification(flat_s, flat_g), "roc": _roc_points(flat_s, flat_g)}
    return out


def _clean(ctx: dict[str, Any]) -> tuple[dict, dict, dict]:
    scores, own, hits, groups = ctx["scores"], ctx["own"], ctx["hits"], ctx["abs_yaw"]
    verif = _verification(scores, own, groups)
    metrics = {"rank1": float(hits.mean()), "threshold": ctx["threshold"], "verification": verif,
               **{k: verif["all"][k] for k in ("auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3")}}
    rows = {**ctx["rows"], "pred": ctx["pred_subject"].tolist(), "hit": hits.tolist(),
            "genuine": ctx["genuine"].tolist(), "max_impostor": ctx["max_impostor"].tolist()}
    return metrics, rows, {}


def _targets(own: torch.Tensor, probes: torch.Tensor, g: int) -> torch.Tensor:
    """A fixed other gallery entry per probe: own + 1 + (probe index mod (G − 1)), wrapped."""
    return (own + 1 + probes % (g - 1)) % g


def _attacked(cell: Cell, ctx: dict[str, Any], head: GalleryHead, fs: Any) -> tuple[dict, dict, dict]:
    attack = ATTACKS.get(cell.attack)(**({"backend": cell.backend} if cell.backend else {}),
                                      **({"eps": cell.eps} if cell.eps is not None else {}), **cell.attack_params)
    keep = torch.from_numpy(np.isin(ctx["abs_yaw"], fs.attack_yaws))
    test, probes, own = ctx["test"], ctx["probes"][keep], ctx["own"][keep]
    target = _targets(own, probes, head.num_classes) if cell.targeted else None
    ids = head.gallery_ids.cpu()
    out: dict[str, list] = {k: [] for k in ("adv_pred", "adv_hit", "adv_genuine", "adv_max_impostor", "linf", "l2",
                                            *(("adv_target_score",) if cell.targeted else ()))}
    device = head.templates.device
    with progress(total=len(probes), desc=cell_label(cell), unit="img") as bar:
        for start in range(0, len(probes), cell.batch_size):
            sl = slice(start, start + cell.batch_size)
            x = test.x[probes[sl]].to(device)
            y = own[sl].to(device)
            t = target[sl].to(device) if target is not None else None
            x_adv = enforce(x, attack(head, x, y, target=t), norm=attack.norm, eps=attack.eps, who=repr(attack))
            with torch.no_grad():
                s = (head.embed(x_adv) @ head.templates.T).cpu()
            ar = torch.arange(len(y))
            other = s.clone()
            other[ar, y.cpu()] = -math.inf
            linf, l2 = norms(x, x_adv)
            out["adv_pred"] += ids[s.argmax(1)].tolist()
            out["adv_hit"] += rank1_hits(s, ids[y.cpu()], ids).tolist()
            out["adv_genuine"] += s[ar, y.cpu()].tolist()
            if t is not None:
                out["adv_target_score"] += s[ar, t.cpu()].tolist()
            out["adv_max_impostor"] += other.max(1).values.tolist()
            out["linf"] += linf.cpu().tolist()
            out["l2"] += l2.cpu().tolist()
            bar.update(len(y))
    k = keep.numpy()
    rows = {name: [v for v, kk in zip(values, k) if kk] for name, values in ctx["rows"].items()}
    rows.update(clean_pred=ctx["pred_subject"][keep].tolist(), clean_hit=ctx["hits"][k].tolist(),
                clean_genuine=ctx["genuine"][keep].tolist())
    if target is not None:     # impersonation: the target identity and its clean score
        rows.update(target=ids[target].tolist(),
                    clean_target_score=ctx["scores"][keep][torch.arange(len(probes)), target].tolist())
    rows.update(out)
    metrics = summarize(rows, threshold=ctx["threshold"], targeted=cell.targeted)
    notes = {"attack": repr(attack), "norm": attack.norm, "attack_params": dict(attack.params),
             "goal": "impersonation" if cell.targeted else "dodging", "attack_yaws": list(fs.attack_yaws),
             "logit_scale": fs.logit_scale}
    return metrics, rows, notes


def cell_label(cell: Cell) -> str:
    goal = "impersonation" if cell.targeted else "dodging"
    return cell.label if cell.attack == NONE else f"{cell.label} | {goal}"


def _context(cell: Cell, fs: Any, device: torch.device) -> tuple[dict[str, Any], GalleryHead, Any]:
    test: FaceSet = setup.load_split(cell.dataset, fs, fs.test_split)
    gallery = setup.gallery_index(test)
    probes = setup.probe_index(test, gallery, n=cell.n, seed=cell.spec_seed)
    model = setup.face_model(cell.model, cell.dataset, fs, seed=cell.spec_seed, device=device)
    head = GalleryHead(model.features, test.x[gallery].to(device), test.subject[gallery], scale=fs.logit_scale,
                       batch_size=cell.batch_size).eval()
    feats = setup.embed(model.features, test.x[probes], batch_size=cell.batch_size, device=device)
    scores = feats @ head.templates.cpu().T                                   # (P, G) cosine
    ids, subject = head.gallery_ids.cpu(), test.subject[probes]
    own = head.index_of(subject.to(ids.device)).cpu()
    rows = torch.arange(len(probes))
    other = scores.clone()
    other[rows, own] = -math.inf
    impostor = scores[other > -math.inf]
    yaw = test.yaw[probes]
    ctx = {"test": test, "probes": probes, "own": own, "scores": scores, "abs_yaw": yaw.abs().numpy(),
           "hits": rank1_hits(scores, subject, ids), "pred_subject": ids[scores.argmax(1)],
           "genuine": scores[rows, own], "max_impostor": other.max(1).values,
           "threshold": threshold_at_far(impostor, fs.threshold_far),
           "rows": {"probe": probes.tolist(), "subject": subject.tolist(), "yaw": yaw.tolist(),
                    "illum": test.illum[probes].tolist()}}
    notes = {"model": _model_info(model.info), "gallery_size": len(gallery), "probes": len(probes),
             "data": {"name": test.name, "split": test.split, "sha256": test.sha256, "images": len(test),
                      "image_size": int(test.x.shape[-1])},
             "threshold": {"far": fs.threshold_far, "value": ctx["threshold"], "n_impostor": int(impostor.numel()),
                           "pairs": "all probes × gallery, clean"}}
    return ctx, head, (model, gallery, notes)


def _model_info(info: dict[str, Any]) -> dict[str, Any]:
    keep = ("model", "arch", "config", "iterations", "trained", "wall_time_s", "seed", "feature", "params",
            "deviations", "losses", "trainset_sha256")
    return {k: info[k] for k in keep if k in info}


def run_cell(cell: Cell, device: torch.device) -> tuple[dict, dict, dict]:
    """Evaluate ``cell``; returns (metrics, per_sample, notes). Deterministic given the cell config."""
    fs = check_settings(cell.settings, dataset=cell.dataset, defenses=(cell.defense,))
    torch.manual_seed(cell.seed)
    ctx, head, (model, gallery, notes) = _context(cell, fs, device)
    torch.manual_seed(cell.seed)  # again: building may have trained or loaded, and that must not matter
    if cell.attack == NONE:
        metrics, rows, extra = _clean(ctx)
        if fs.sheet_ids:
            notes["images"] = setup.sheets(ctx["test"], gallery, model, ids=fs.sheet_ids, device=device)
    else:
        metrics, rows, extra = _attacked(cell, ctx, head, fs)
    return metrics, rows, {**notes, **extra}
