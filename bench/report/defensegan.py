"""Defense-GAN sections of a classifier-track report, from stored records only (no data, no models, no clock).

* detection: ROC of the reconstruction MSE ``‖G(z*) − x‖²`` (per-sample ``clean_rec_mse`` vs ``adv_rec_mse``)
  per attacked Defense-GAN cell, with its AUC → ``detection_roc.png`` and tidy rows ``detection_auc``;
* ``defensegan.md``: generator provenance and deviations from the paper's recipe, projection settings per
  column, clean reconstruction MSE, accuracy on projections of clean and FGSM images, the gradient-masking
  evidence (``grad_zero_fraction``, mean |∇|, perturbation norms) beside each attacked cell's accuracy,
  detection AUCs and time per image; ``sample_sheet.png`` from the images stored in the no-attack cells;
* the generator's quality against training iterations (``bench.report.gan_quality``) when its provenance
  carries a measured curve → ``generator_quality.png``;
* ``sweep.png`` when the records vary L or R (the ``defensegan-sweep`` experiment).
"""
from __future__ import annotations

import base64
import math
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report import gan_quality  # noqa: E402

DEFENSE = "defense-gan"


def detection_roc(clean: Sequence[float], adv: Sequence[float]) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC of flagging an input when its score is high: clean scores negative, adversarial positive.

    Returns (false-positive rates, true-positive rates, AUC); AUC 0.5 = chance, 1 = every adversarial image
    scores above every clean one. Raises ValueError when either side is empty.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    if len(clean) == 0 or len(adv) == 0:
        raise ValueError(f"expected clean and adversarial scores, got {len(clean)} and {len(adv)}")
    labels = np.r_[np.zeros(len(clean)), np.ones(len(adv))]
    scores = np.r_[np.asarray(clean, dtype=float), np.asarray(adv, dtype=float)]
    fpr, tpr, _ = roc_curve(labels, scores)
    return fpr, tpr, float(roc_auc_score(labels, scores))


def _dg(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["config"]["defense"] == DEFENSE]


def has_defensegan(records: Iterable[dict[str, Any]]) -> bool:
    return bool(_dg(records))


def _purifier(record: dict[str, Any]) -> dict[str, Any]:
    return record.get("notes", {}).get("defense", {}).get("purifier", {})


def _attacked(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in _dg(records) if r["config"]["attack"] != "none" and "clean_rec_mse" in r["per_sample"]]


def _key(r: dict[str, Any]) -> tuple:
    c = r["config"]
    return (c["model"], c["defense_label"], c["attack"], c["threat"], -1 if c["eps"] is None else c["eps"], r["key"])


def detection_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tidy rows (metric ``detection_auc``) for every attacked Defense-GAN cell with stored MSEs."""
    rows = []
    for r in sorted(_attacked(records), key=_key):
        c, ps = r["config"], r["per_sample"]
        auc = detection_roc(ps["clean_rec_mse"], ps["adv_rec_mse"])[2]
        rows.append({"experiment": c["experiment"], "dataset": c["dataset"], "model": c["model"],
                     "defense": c["defense_label"], "attack": c["attack"], "backend": c["backend"] or "",
                     "threat": c["threat"], "norm": r.get("notes", {}).get("norm", ""), "eps": c["eps"],
                     "n": len(ps["y"]), "metric": "detection_auc", "value": auc, "ci_low": math.nan,
                     "ci_high": math.nan, "paper_value": math.nan, "paper_source": "", "paper_status": "",
                     "record": r["key"]})
    return rows


def detection_figure(records: list[dict[str, Any]], *, title: str) -> plt.Figure | None:
    """One panel per attack; one ROC per (model, column, threat), AUC in the legend."""
    cells = sorted(_attacked(records), key=_key)
    attacks = sorted({r["config"]["attack"] for r in cells})
    if not attacks:
        return None
    fig, axes = plt.subplots(1, len(attacks), figsize=(4.2 * len(attacks), 4.0), squeeze=False)
    for ax, attack in zip(axes[0], attacks):
        for r in (r for r in cells if r["config"]["attack"] == attack):
            c = r["config"]
            fpr, tpr, auc = detection_roc(r["per_sample"]["clean_rec_mse"], r["per_sample"]["adv_rec_mse"])
            ax.plot(fpr, tpr, lw=1, label=f"{c['model']} · {c['defense_label']} ({c['threat']}) AUC {auc:.2f}")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls="--")
        ax.set(title=attack, xlabel="false-positive rate (clean flagged)", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(fontsize=5.5, loc="lower right")
    axes[0][0].set_ylabel("true-positive rate (adversarial flagged)")
    fig.suptitle(f"{title}: detection by reconstruction MSE", fontsize=10)
    fig.tight_layout()
    return fig


def _decode(sheet: dict[str, Any]) -> np.ndarray:
    """(N, C, H, W) uint8 from ``bench.tracks.classifier.image_sheet``'s JSON form."""
    return np.frombuffer(base64.b64decode(sheet["uint8_base64"]), dtype=np.uint8).reshape(sheet["shape"])


def _clean_cells(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for r in _dg(records) if r["config"]["attack"] == "none"), key=_key)


def sample_sheet(records: list[dict[str, Any]], *, title: str) -> plt.Figure | None:
    """Test images and their projections per Defense-GAN column (the first model's no-attack cells), then, per
    attack, the oblivious adversarial images and their projections, where the records hold them."""
    cells = [r for r in _clean_cells(records) if "samples" in r.get("notes", {})]
    if not cells:
        return None
    model = cells[0]["config"]["model"]
    cells = [r for r in cells if r["config"]["model"] == model]
    rows = [("test images", _decode(cells[0]["notes"]["samples"]["inputs"]))]
    rows += [(r["config"]["defense_label"], _decode(r["notes"]["samples"]["purified"])) for r in cells]
    attacked = sorted((r for r in _dg(records) if r["config"]["model"] == model and r["config"]["attack"] != "none"
                       and r["config"]["threat"] == "oblivious" and "samples" in r.get("notes", {})), key=_key)
    order = sorted({(r["config"]["eps"] is None, r["config"]["attack"]) for r in attacked})  # FGSM-like first
    for _, attack in order:
        mine = [r for r in attacked if r["config"]["attack"] == attack]
        eps = mine[0]["config"]["eps"]
        name = attack.upper() + ("" if eps is None else f" ε {eps:g}")
        rows.append((f"{name} inputs", _decode(mine[0]["notes"]["samples"]["inputs"])))
        rows += [(f"→ {r['config']['defense_label']}", _decode(r["notes"]["samples"]["purified"])) for r in mine]
    cols = max(len(block) for _, block in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(max(6.0, cols * 0.6 + 1.6), len(rows) * 0.65 + 0.6),
                             squeeze=False)
    fig.subplots_adjust(left=1.6 / max(6.0, cols * 0.6 + 1.6), right=0.98, top=1 - 0.45 / (len(rows) * 0.65 + 0.6))
    for (label, block), line in zip(rows, axes):
        for k, ax in enumerate(line):
            if k < len(block):
                ax.imshow(block[k, 0], cmap="gray", vmin=0, vmax=255)
            else:
                ax.set_axis_off()
            ax.set_xticks([]), ax.set_yticks([])
        line[0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    where = "no-attack cells" + (", then oblivious attacks" if attacked else "")
    fig.suptitle(f"projections G(z*): model {model}, {where}", fontsize=8)
    return fig


def _lr(r: dict[str, Any]) -> tuple[int, int]:
    p = {"L": 200, "R": 10, **r["config"]["defense_params"]}
    return int(p["L"]), int(p["R"])


DEFAULT_SWITCHES = {"variant": "orig", "z_init": "code", "lr_schedule": "constant"}


def sweep_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per (model, L, R) of the Orig variant with the released code's switches (z-init, LR schedule): clean
    and oblivious-FGSM accuracy, seconds per image, n. Cells with other switches are the table's columns only."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in _dg(records):
        c = r["config"]
        if any(c["defense_params"].get(k, v) != v for k, v in DEFAULT_SWITCHES.items()):
            continue
        if c["attack"] not in ("none", "fgsm"):
            continue
        if c["attack"] == "fgsm" and c["threat"] != "oblivious":
            continue
        row = out.setdefault((c["model"], *_lr(r)), {"model": c["model"], "L": _lr(r)[0], "R": _lr(r)[1]})
        if c["attack"] == "none":
            row.update(clean=_accuracy(r), n=len(r["per_sample"]["y"]))
        else:
            row.update(fgsm=_accuracy(r), s_per_image=seconds_per_image(r))
    return pd.DataFrame(sorted(out.values(), key=lambda d: (d["model"], d["L"], d["R"])))


def _accuracy(r: dict[str, Any]) -> float:
    return sum(a == y for a, y in zip(r["per_sample"]["adv_pred"], r["per_sample"]["y"])) / len(r["per_sample"]["y"])


def seconds_per_image(r: dict[str, Any]) -> float:
    """Projection time per image from a stored wall time: an attacked cell projects every image twice (clean
    and adversarial). Oblivious cells are used for timing because the run's first cell, always a no-attack
    one, also trains or loads the classifier and generator; the rest (an FGSM step, loading) is small."""
    passes = 1 if r["config"]["attack"] == "none" else 2
    return r["wall_seconds"] / (passes * len(r["per_sample"]["y"]))


def sweep_figure(records: list[dict[str, Any]], *, title: str) -> plt.Figure | None:
    """Accuracy and time per image vs L (at the R with most L values) and vs R (at the L with most R values)."""
    frame = sweep_frame(records)
    if frame.empty or len(frame[["L", "R"]].drop_duplicates()) < 2:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, (vary, fixed) in zip(axes, (("L", "R"), ("R", "L"))):
        at = frame.groupby(fixed)[vary].nunique().sort_index().idxmax()
        part = frame[frame[fixed] == at]
        timer = ax.twinx()
        for model, line in part.groupby("model"):
            for col, style, name in (("clean", "o-", "clean"), ("fgsm", "s--", "FGSM (oblivious)")):
                if col in line:
                    ax.plot(line[vary], line[col], style, label=f"{model} · {name}")
            if "s_per_image" in line:
                timer.plot(line[vary], line["s_per_image"], "^:", color="grey", label=f"{model} · s / image")
        ax.set(xlabel=vary, xscale="log", ylim=(0, 1.02), title=f"vs {vary} at {fixed} = {at}", ylabel="accuracy")
        ax.set_xticks(sorted(part[vary]), [str(v) for v in sorted(part[vary])])
        ax.set_xticks([], minor=True)
        timer.set_ylim(bottom=0)
        timer.set_ylabel("seconds per projection (oblivious FGSM cell)")
        lines = ax.get_legend_handles_labels(), timer.get_legend_handles_labels()
        ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], fontsize=6, loc="lower right")
    fig.suptitle(f"{title}: Defense-GAN-Orig vs projection steps L and restarts R", fontsize=10)
    fig.tight_layout()
    return fig


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}g}" if isinstance(v, float) and (abs(v) < 1e-2 and v != 0) else (
        f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows], ""]


def markdown(records: list[dict[str, Any]], spec: dict[str, Any], *, title: str) -> str:
    """``defensegan.md``: provenance, settings, quality, gradient-masking evidence, detection, timing."""
    dg = sorted(_dg(records), key=_key)
    acc = _accuracy
    out = [f"## {title}: Defense-GAN", "", f"Paper: {spec.get('paper_source') or '–'}", "",
           spec.get("notes", "").strip(), "", "### Generator", ""]
    gens = {}
    for r in dg:
        g = r["notes"]["defense"]["generator"]
        gens[(g.get("source"), g.get("iterations"), g.get("seed"), g.get("sha256") or "", g.get("key") or "")] = r
    out += _table(["source", "iterations", "seed", "weights SHA-256", "training key"],
                  [[s, i, sd, sha[:16] or "–", key[:16] or "–"] for s, i, sd, sha, key in sorted(gens, key=str)])
    out += ["Deviations from the paper's recipe (each listed once; from the records' notes):", ""]
    out += [f"- {d}" for d in sorted({d for r in dg for d in r["notes"]["defense"].get("deviations", [])})] + [""]
    out += ["### Projection settings per column", ""]
    settings = {}
    for r in dg:
        p, c = _purifier(r), r["config"]
        steps = (p.get("unrolled_steps") or p.get("L")) if c["threat"] == "unrolled" else "–"
        settings[(c["defense_label"], c["threat"])] = [
            c["defense_label"], c["threat"], p.get("variant"), p.get("L"), p.get("R"), p.get("lr"), p.get("momentum"),
            p.get("z_init"), p.get("lr_schedule"), steps, c["eot"] if c["threat"] == "bpda" else "–", c["n"],
            r["notes"]["defense"].get("rec_train_images", "–")]
    out += _table(["column", "threat", "variant", "L", "R", "lr", "momentum", "z init", "lr schedule",
                   "unrolled steps", "EOT draws", "n per cell", "Rec training images"],
                  [settings[k] for k in sorted(settings)])
    out += ["### Reconstruction and accuracy on projections", "",
            "Clean reconstruction MSE: mean per-pixel ‖G(z*) − x‖² over the no-attack cell's test images. Accuracy "
            "on projections: the no-attack cell (clean) and the oblivious FGSM cell (FGSM on the bare classifier, "
            "then projected).", ""]
    quality: dict[tuple, list[Any]] = {}
    for r in dg:
        c = r["config"]
        row = quality.setdefault((c["model"], c["defense_label"]), [c["model"], c["defense_label"], math.nan, math.nan,
                                                                    math.nan, c["n"]])
        if c["attack"] == "none":
            mse = r["per_sample"].get("clean_rec_mse", [])
            row[2], row[3] = (sum(mse) / len(mse) if mse else math.nan), acc(r)
        elif c["attack"] == "fgsm" and c["threat"] == "oblivious":
            row[4] = acc(r)
    out += _table(["model", "column", "clean rec. MSE", "acc. on projected clean", "acc. on projected FGSM", "n"],
                  [quality[k] for k in sorted(quality)])
    out += ["Sample sheet: `sample_sheet.png`.", ""]
    out += gan_quality.markdown(dg, _fmt)
    out += ["### Accuracy beside the gradient evidence", "",
            "Per attacked cell: `grad 0` is the fraction of exactly-zero entries of the input gradient the attack saw "
            "(on its threat's surface), `mean |grad|` their mean magnitude, then the mean perturbation norms. "
            "Unrolled accuracy near the clean one together with `grad 0` near 1 (or tiny gradients and norms) is the "
            "vanishing-gradient effect of the released white-box, not robustness.", ""]
    attacked = [r for r in dg if r["config"]["attack"] != "none"]
    order = {"unrolled": 0, "bpda": 1, "oblivious": 2}
    attacked.sort(key=lambda r: (order.get(r["config"]["threat"], 3), _key(r)))
    out += _table(["model", "column", "attack", "threat", "accuracy", "clean acc.", "grad 0", "mean |grad|",
                   "mean L∞", "mean L2", "n"],
                  [[r["config"]["model"], r["config"]["defense_label"], r["config"]["attack"], r["config"]["threat"],
                    acc(r), r["metrics"].get("clean_accuracy"), r["metrics"].get("grad_zero_fraction"),
                    r["metrics"].get("grad_abs_mean"), r["metrics"].get("linf_mean"), r["metrics"].get("l2_mean"),
                    r["config"]["n"]] for r in attacked])
    det = detection_rows(records)
    out += ["### Detection by reconstruction MSE", "", "AUC of flagging an image whose reconstruction MSE is high "
            "(clean test images negative, their adversarial versions positive); ROC curves in `detection_roc.png`.", ""]
    out += _table(["model", "column", "attack", "threat", "AUC", "n"],
                  [[d["model"], d["defense"], d["attack"], d["threat"], d["value"], d["n"]] for d in det])
    out += ["### Time per projection", "", "Wall seconds of each oblivious FGSM cell / (2 n): two projections per "
            "image (clean and adversarial); FGSM on the bare classifier and loading are included.", ""]
    timed = [r for r in dg if r["config"]["attack"] == "fgsm" and r["config"]["threat"] == "oblivious"]
    out += _table(["model", "column", "L", "R", "s / image", "n"],
                  [[r["config"]["model"], r["config"]["defense_label"], *_lr(r), seconds_per_image(r), r["config"]["n"]]
                   for r in timed])
    return "\n".join(out)


def extend_report(report: Any, records: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    """Add the Defense-GAN sections to a classifier-track :class:`bench.report.Report` (in place)."""
    records = [r for r in records if r.get("status") == "ok"]
    rows = detection_rows(records)
    if rows:
        report.tidy = pd.concat([report.tidy, pd.DataFrame(rows, columns=report.tidy.columns)], ignore_index=True)
    report.texts["defensegan.md"] = markdown(records, spec, title=report.title)
    for name, build in (("detection_roc.png", detection_figure), ("sample_sheet.png", sample_sheet),
                        ("sweep.png", sweep_figure), ("generator_quality.png", gan_quality.figure)):
        fig = build(records, title=report.title)
        if fig is not None:
            report.figures[name] = fig
