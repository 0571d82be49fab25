"""Faces-track figures (matplotlib, Agg), from the tidy frame and the records; the caller saves them.

* ``rank1_vs_yaw.png``: clean rank-1 per signed probe yaw, one line per model (paper values as black ×).
* ``rank1_vs_yaw_<attack row>.png``: one panel per model, clean and each ε of that attack row.
* ``roc.png``: clean ROC per |yaw| group (sampled at log-spaced FARs), one panel per model.
* ``success_vs_eps_<attack>_<goal>.png``: attack success rate against ε, one line per |yaw| group.
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


def _panels(n: int, *, width: float = 3.6) -> tuple[Any, list[Any]]:
    fig, axes = plt.subplots(1, n, figsize=(width * n, 3.3), squeeze=False, sharey=True)
    return fig, list(axes[0])


def rank1_vs_yaw(tidy: pd.DataFrame, *, title: str) -> Any:
    clean = tidy[(tidy["metric"] == "rank1_signed_yaw") & (tidy["attack"] == "none")]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for model, part in clean.groupby("model", sort=True):
        _errorbar(ax, part, "yaw", marker="o", label=model)
        paper = part[part["paper_value"].notna()]
        if not paper.empty:
            ax.scatter(paper["yaw"], paper["paper_value"], marker="x", color="black", zorder=3)
    ax.set(xlabel="probe yaw (°)", ylabel="rank-1", ylim=(0, 1.05), xticks=range(-90, 91, 30))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{title}\nclean rank-1 by probe yaw (× = paper value)", fontsize=9)
    fig.tight_layout()
    return fig


def rank1_vs_yaw_attacked(tidy: pd.DataFrame, label: str, part: pd.DataFrame, *, title: str) -> Any:
    clean = tidy[(tidy["metric"] == "rank1_signed_yaw") & (tidy["attack"] == "none")]
    models = sorted(set(part["model"]))
    fig, axes = _panels(len(models))
    eps_values = sorted(set(part["eps"].dropna()))
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, max(1, len(eps_values))))
    for ax, model in zip(axes, models):
        _errorbar(ax, clean[clean["model"] == model], "yaw", marker="o", color="black", label="clean")
        mine = part[part["model"] == model]
        if eps_values:
            for color, eps in zip(colors, eps_values):
                _errorbar(ax, mine[mine["eps"] == eps], "yaw", marker=".", color=color, label=eps_label(eps))
        else:
            _errorbar(ax, mine, "yaw", marker=".", color=colors[0], label="attacked")
        ax.set(title=model, xlabel="probe yaw (°)", ylim=(0, 1.05), xticks=range(-90, 91, 45))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("rank-1")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}\n{label}", fontsize=9)
    fig.tight_layout()
    return fig


def roc(records: list[dict[str, Any]], *, title: str) -> Any | None:
    clean = sorted((r for r in records if r["config"]["attack"] == "none"), key=lambda r: r["config"]["model"])
    if not clean:
        return None
    fig, axes = _panels(len(clean))
    for ax, record in zip(axes, clean):
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
    axes[0].set_ylabel("TAR")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}\nclean verification ROC by probe |yaw|", fontsize=9)
    fig.tight_layout()
    return fig


def success_vs_eps(part: pd.DataFrame, label: str, *, title: str) -> Any:
    models = sorted(set(part["model"]))
    fig, axes = _panels(len(models))
    groups = sorted(set(part["yaw"].dropna().astype(int)))
    colors = plt.cm.plasma(np.linspace(0.05, 0.85, max(1, len(groups))))
    for ax, model in zip(axes, models):
        mine = part[part["model"] == model].assign(eps255=lambda f: f["eps"] * 255)
        for color, g in zip(colors, groups):
            _errorbar(ax, mine[mine["yaw"] == g], "eps255", marker="o", color=color,
                      label="0°" if g == 0 else f"±{g}°")
        _errorbar(ax, mine[mine["yaw"].isna()], "eps255", marker="s", color="black", label="all")
        ax.set(title=model, xlabel="ε (×1/255, L∞)", ylim=(0, 1.05))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("attack success rate")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}\n{label}: success rate vs ε by probe |yaw|", fontsize=9)
    fig.tight_layout()
    return fig


def image_sheet(sheet: dict[str, Any], *, title: str) -> Any:
    """A stored sheet (base64 PNG grid with row/column labels) as a labelled figure."""
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(sheet["png"]))) as img:
        array = np.asarray(img.convert("RGB"))
    rows, cols = sheet["rows"], sheet["cols"]
    h, w = array.shape[0] / rows, array.shape[1] / cols
    fig, ax = plt.subplots(figsize=(0.75 * cols + 0.6, 0.75 * rows + 0.7))
    ax.imshow(array, interpolation="nearest")
    ax.set_xticks([w * (c + 0.5) for c in range(cols)], sheet["col_labels"], fontsize=6)
    ax.set_yticks([h * (r + 0.5) for r in range(rows)], [str(v) for v in sheet["row_labels"]], fontsize=6)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
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
        signed = attacked[attacked["metric"] == "rank1_signed_yaw"]
        for label, part in signed.groupby("row", sort=True):
            out[f"rank1_vs_yaw_{_slug(label)}.png"] = rank1_vs_yaw_attacked(tidy, label, part, title=title)
        asr = attacked[(attacked["metric"] == "attack_success_rate") & attacked["eps"].notna()]
        for label, part in asr.groupby("row", sort=True):
            out[f"success_vs_eps_{_slug(label)}.png"] = success_vs_eps(part, label, title=title)
    clean = sorted((r for r in records if r["config"]["attack"] == "none"), key=lambda r: r["config"]["model"])
    contact = next((r["notes"]["images"]["contact"] for r in clean if r["notes"].get("images", {}).get("contact")), None)
    if contact:
        out["data_contact_sheet.png"] = image_sheet(contact, title=f"{title}\ntest identities × yaw (illum 0)")
    for r in clean:
        sheet = r["notes"].get("images", {}).get("rotations")
        if sheet:
            model = r["config"]["model"]
            out[f"rotations_{_slug(model)}.png"] = image_sheet(
                sheet, title=f"{model}: input (left) re-rendered at each yaw by its generator")
    return out
