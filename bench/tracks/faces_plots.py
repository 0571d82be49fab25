"""Faces-track figures (matplotlib, Agg), from the tidy frame and the records; the caller saves them.

* ``rank1_vs_yaw.png``: clean rank-1 per signed probe yaw, one line per model (paper values as black ×).
* ``rank1_vs_yaw_attacked.png``: a row per attack row (attack, backend, goal), a column per model: clean
  and each ε.
* ``roc.png``: clean ROC per |yaw| group (sampled at log-spaced FARs), one panel per model.
* ``success_vs_eps.png``: attack success rate against ε, one line per |yaw| group (attacks with an ε).
* ``data_contact_sheet.png`` and ``rotations_<model>.png``: images stored in the clean records.
"""
from __future__ import annotations

import base64
import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.tracks.faces_tables import _label_frame, eps_label  # noqa: E402


def _errorbar(ax: Any, part: pd.DataFrame, x: str, **kwargs: Any) -> None:
    part = part.sort_values(x)
    v = part["value"].to_numpy(float)
    err = np.vstack([v - part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float) - v])
    ax.errorbar(part[x].to_numpy(float), v, yerr=np.clip(np.nan_to_num(err), 0, None), capsize=2, ms=3, **kwargs)


def _panels(n: int, *, rows: int = 1, width: float = 3.4) -> tuple[Any, Any]:
    """A rows × n grid of panels sharing y, with fixed margins (tight_layout is slow on a busy CPU)."""
    fig, axes = plt.subplots(rows, n, figsize=(width * n, 2.9 * rows + 0.8), squeeze=False, sharey=True)
    top = 1 - 0.75 / (2.9 * rows + 0.8)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.5 / (2.9 * rows + 0.8), top=top, wspace=0.08,
                        hspace=0.45)
    return fig, axes


def rank1_vs_yaw(tidy: pd.DataFrame, *, title: str) -> Any:
    clean = tidy[(tidy["metric"] == "rank1_signed_yaw") & (tidy["attack"] == "none")]
    fig, axes = _panels(1, width=6.0)
    ax = axes[0][0]
    for model, part in clean.groupby("model", sort=True):
        _errorbar(ax, part, "yaw", marker="o", label=model)
        paper = part[part["paper_value"].notna()]
        if not paper.empty:
            ax.scatter(paper["yaw"], paper["paper_value"], marker="x", color="black", zorder=3)
    ax.set(xlabel="probe yaw (°)", ylabel="rank-1", ylim=(0, 1.05), xticks=range(-90, 91, 30))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"{title}\nclean rank-1 by probe yaw (× = paper value)", fontsize=8)
    return fig


def rank1_vs_yaw_attacked(tidy: pd.DataFrame, attacked: pd.DataFrame, *, title: str) -> Any:
    """One row of panels per attack row (attack, backend, goal), one column per model: clean and each ε."""
    clean = tidy[(tidy["metric"] == "rank1_signed_yaw") & (tidy["attack"] == "none")]
    labels, models = sorted(set(attacked["row"])), sorted(set(attacked["model"]))
    fig, axes = _panels(len(models), rows=len(labels))
    for i, label in enumerate(labels):
        part = attacked[attacked["row"] == label]
        eps_values = sorted(set(part["eps"].dropna()))
        colors = plt.cm.viridis(np.linspace(0.1, 0.85, max(1, len(eps_values))))
        for ax, model in zip(axes[i], models):
            _errorbar(ax, clean[clean["model"] == model], "yaw", marker="o", color="black", label="clean")
            mine = part[part["model"] == model]
            for color, eps in zip(colors, eps_values or [None]):
                line = mine if eps is None else mine[mine["eps"] == eps]
                _errorbar(ax, line, "yaw", marker=".", color=color, label=eps_label(eps) or "attacked")
            ax.set(title=f"{model} — {label}", ylim=(0, 1.05), xticks=range(-90, 91, 45))
            ax.title.set_fontsize(7)
            ax.grid(alpha=0.3)
        axes[i][0].set_ylabel("rank-1")
        axes[i][0].legend(fontsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("probe yaw (°)")
    fig.suptitle(f"{title}\nrank-1 by probe yaw under attack", fontsize=8)
    return fig


def roc(records: list[dict[str, Any]], *, title: str) -> Any | None:
    clean = sorted((r for r in records if r["config"]["attack"] == "none"), key=lambda r: r["config"]["model"])
    if not clean:
        return None
    fig, axes = _panels(len(clean))
    for ax, record in zip(axes[0], clean):
        verif = record["metrics"]["verification"]
        groups = [k for k in verif if k != "all"]
        colors = plt.cm.plasma(np.linspace(0.05, 0.85, max(1, len(groups))))
        for color, name in zip([*colors, "black"], [*groups, "all"]):
            points = verif[name]["roc"]
            if points["far"]:
                label = "all" if name == "all" else ("0°" if name == "0" else f"±{name}°")
                ax.plot(points["far"], points["tar"], color=color, lw=2 if name == "all" else 1, label=label)
        ax.set(xscale="log", title=record["config"]["model"], xlabel="FAR", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("TAR")
    axes[0][0].legend(fontsize=6)
    fig.suptitle(f"{title}\nclean verification ROC by probe |yaw|", fontsize=8)
    return fig


def success_vs_eps(asr: pd.DataFrame, *, title: str) -> Any:
    """One row of panels per attack row with ε values, one column per model; a line per |yaw| group."""
    labels, models = sorted(set(asr["row"])), sorted(set(asr["model"]))
    fig, axes = _panels(len(models), rows=len(labels))
    groups = sorted(set(asr["yaw"].dropna().astype(int)))
    colors = plt.cm.plasma(np.linspace(0.05, 0.85, max(1, len(groups))))
    for i, label in enumerate(labels):
        for ax, model in zip(axes[i], models):
            mine = asr[(asr["row"] == label) & (asr["model"] == model)].assign(eps255=lambda f: f["eps"] * 255)
            for color, g in zip(colors, groups):
                _errorbar(ax, mine[mine["yaw"] == g], "eps255", marker="o", color=color,
                          label="0°" if g == 0 else f"±{g}°")
            _errorbar(ax, mine[mine["yaw"].isna()], "eps255", marker="s", color="black", label="all")
            ax.set(title=f"{model} — {label}", ylim=(0, 1.05))
            ax.title.set_fontsize(7)
            ax.grid(alpha=0.3)
        axes[i][0].set_ylabel("success rate")
        axes[i][0].legend(fontsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("ε (×1/255, L∞)")
    fig.suptitle(f"{title}\nattack success rate vs ε by probe |yaw|", fontsize=8)
    return fig


def image_sheet(sheet: dict[str, Any], *, title: str) -> Any:
    """A stored sheet (base64 PNG grid with row/column labels) as a labelled figure."""
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(sheet["png"]))) as img:
        array = np.asarray(img.convert("RGB"))
    rows, cols = sheet["rows"], sheet["cols"]
    h, w = array.shape[0] / rows, array.shape[1] / cols
    fig = plt.figure(figsize=(0.75 * cols + 0.6, 0.75 * rows + 0.8))
    ax = fig.add_axes((0.5 / (0.75 * cols + 0.6), 0.3 / (0.75 * rows + 0.8), 1 - 0.6 / (0.75 * cols + 0.6),
                       1 - 0.8 / (0.75 * rows + 0.8)))
    ax.imshow(array, interpolation="nearest", aspect="auto")
    ax.set_xticks([w * (c + 0.5) for c in range(cols)], sheet["col_labels"], fontsize=6)
    ax.set_yticks([h * (r + 0.5) for r in range(rows)], [str(v) for v in sheet["row_labels"]], fontsize=6)
    ax.tick_params(length=0)
    fig.suptitle(title, fontsize=7)
    return fig


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in text.lower().replace("ε=", "eps").replace("/255", ""))
    return "-".join(p for p in keep.split("-") if p)


def figures(tidy: pd.DataFrame, records: list[dict[str, Any]], *, title: str) -> dict[str, Any]:
    """Every faces figure, by file name."""
    out: dict[str, Any] = {"rank1_vs_yaw.png": rank1_vs_yaw(tidy, title=title)}
    curve = roc(records, title=title)
    if curve is not None:
        out["roc.png"] = curve
    attacked = tidy[(tidy["attack"] != "none")]
    if not attacked.empty:
        attacked = attacked.assign(row=_label_frame(attacked.assign(eps=math.nan)))
        out["rank1_vs_yaw_attacked.png"] = rank1_vs_yaw_attacked(
            tidy, attacked[attacked["metric"] == "rank1_signed_yaw"], title=title)
        asr = attacked[(attacked["metric"] == "attack_success_rate") & attacked["eps"].notna()]
        if not asr.empty:
            out["success_vs_eps.png"] = success_vs_eps(asr, title=title)
    clean = sorted((r for r in records if r["config"]["attack"] == "none"), key=lambda r: r["config"]["model"])
    sheets = [r["notes"].get("images", {}) for r in clean]
    contact = next((s["contact"] for s in sheets if s.get("contact")), None)
    if contact:
        out["data_contact_sheet.png"] = image_sheet(contact, title=f"{title}\ntest identities × yaw (illum 0)")
    for r in clean:
        sheet = r["notes"].get("images", {}).get("rotations")
        if sheet:
            model = r["config"]["model"]
            out[f"rotations_{_slug(model)}.png"] = image_sheet(
                sheet, title=f"{model}: input (left) re-rendered at each yaw by its generator")
    return out
