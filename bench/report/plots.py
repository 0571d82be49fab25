"""Report figures (matplotlib, Agg). Functions return figures; the caller saves them."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report.tables import column_parts  # noqa: E402

_HATCH = {"unrolled": "//", "bpda": "xx"}  # a defense's threat columns share its colour; "no attack" is paler


def accuracy_bars(table: pd.DataFrame, *, title: str) -> plt.Figure:
    """Accuracy per model and column, one panel per attack row (three to a row); paper values as black
    markers. Each defense has one colour; its no-attack column is paler, unrolled and bpda are hatched."""
    attacks = list(dict.fromkeys(table["attack"]))
    columns = [c for c in table["column"].cat.categories if c in set(table["column"])]
    families = list(dict.fromkeys(column_parts(c)[0] for c in columns))
    palette = plt.get_cmap("tab10")
    n_models = max(len(set(table["model"])), 1)
    ncols = min(3, len(attacks))
    nrows = -(-len(attacks) // ncols)
    panel = max(4.2, 0.09 * len(columns) * n_models + 1.2)
    legend_rows = -(-(len(columns) + 1) // 5)  # the columns (and the paper marker), five to a row
    height = 3.3 * nrows + 0.2 * legend_rows + 0.5
    legend_width = min(5, len(columns) + 1) * (0.065 * max(map(len, columns), default=8) + 0.6)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(panel * ncols, legend_width, 0.09 * len(title)), height),
                             squeeze=False, sharey=True)
    width = 0.8 / max(1, len(columns))
    has_paper = bool(table["paper"].notna().any())
    for ax, attack in zip(axes.flat, attacks):
        part = table[table["attack"] == attack]
        models = sorted(set(part["model"]))
        for j, column in enumerate(columns):
            rows = part[part["column"] == column].set_index("model").reindex(models)
            xs = np.arange(len(models)) + (j - (len(columns) - 1) / 2) * width
            ours = rows["ours"].to_numpy(dtype=float)
            err = np.vstack([ours - rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float) - ours])
            family, threat = column_parts(column)
            ax.bar(xs, ours, width, yerr=np.clip(np.nan_to_num(err), 0, None), capsize=2, label=column,
                   color=palette(families.index(family) % 10), alpha=0.45 if threat == "no attack" else 1.0,
                   hatch=_HATCH.get(threat), edgecolor="white", linewidth=0, error_kw={"elinewidth": 0.8})
            paper = rows["paper"].to_numpy(dtype=float)
            ax.scatter(xs, paper, marker="_", s=120, color="black", zorder=3,
                       label="paper" if j == 0 and attack == attacks[0] and has_paper else None)
        ax.set_xticks(range(len(models)), models)
        ax.set_title(str(attack))
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.flat[len(attacks):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("accuracy")
    fig.suptitle(title, fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, (0.2 * legend_rows + 0.15) / height, 1, 1 - 0.35 / height))
    return fig


def accuracy_vs_eps(frame: pd.DataFrame, *, title: str) -> plt.Figure | None:
    """Accuracy against ε per attack, one line per (model, defense, threat); None without ε values."""
    acc = frame[(frame["metric"] == "accuracy") & frame["eps"].notna()]
    if acc.empty:
        return None
    attacks = sorted(set(acc["attack"]))
    fig, axes = plt.subplots(1, len(attacks), figsize=(4.5 * len(attacks), 3.6), squeeze=False, sharey=True)
    for ax, attack in zip(axes[0], attacks):
        part = acc[acc["attack"] == attack]
        for (model, defense, threat, backend), line in part.groupby(["model", "defense", "threat", "backend"]):
            line = line.sort_values("eps")
            label = f"{model} · {defense}" + ("" if threat in ("none", "oblivious") else f" ({threat})")
            ax.errorbar(line["eps"], line["value"], yerr=np.clip([line["value"] - line["ci_low"], line["ci_high"] - line["value"]], 0, None),
                        marker="o", ms=3, capsize=2, label=label)
        ax.set_title(attack)
        ax.set_xlabel("ε (L∞, pixels in [0, 1])")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("accuracy")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
