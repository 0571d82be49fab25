"""Generator quality against training iterations, from the ``quality_curve`` each Defense-GAN record carries.

The curve is measured once per shipped generator (``python -m defenses.defensegan.curve``) and stored in its
provenance, which every Defense-GAN cell copies into ``notes.defense.generator``; so this section, like the
rest of a report, is rebuilt from stored records alone. Generators without a curve (trained inside a run, or
exported without measuring one) are listed as such.
"""
from __future__ import annotations

from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = (("rec_mse_clean", "clean rec. MSE"), ("acc_clean_projected", "acc. projected clean"),
           ("acc_fgsm_projected", "acc. projected FGSM"), ("acc_fgsm", "acc. FGSM, no defense"))


def curves(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Weights SHA-256 (or training key) -> generator provenance, for the Defense-GAN records' generators."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        gen = r.get("notes", {}).get("defense", {}).get("generator")
        if gen:
            out.setdefault(gen.get("sha256") or gen.get("key") or "?", gen)
    return out


def markdown(records: Iterable[dict[str, Any]], fmt: Any) -> list[str]:
    """Lines of the ``defensegan.md`` section: one table per generator with a measured curve."""
    out = ["### Generator quality against training iterations", ""]
    for sha, gen in sorted(curves(records).items()):
        curve = gen.get("quality_curve")
        if not curve:
            out += [f"Generator `{sha[:16]}` ({gen.get('source')}, {gen.get('iterations')} iterations): no quality "
                    "curve was measured for it.", ""]
            continue
        s = curve["settings"]
        out += [f"Generator `{sha[:16]}` ({gen.get('iterations')} iterations). Snapshots of its training run, "
                f"measured on the first {s['n']} test images with classifier {s['classifier']} "
                f"({s['classifier_epochs']} epochs), FGSM ε = {s['eps']} on the bare classifier, projection "
                f"L = {s['L']}, R = {s['R']} (`python -m defenses.defensegan.curve`); plot: "
                "`generator_quality.png`.", "",
                "| iteration | " + " | ".join(name for _, name in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
        out += [f"| {row['iteration']} | " + " | ".join(fmt(row.get(k)) for k, _ in COLUMNS) + " |"
                for row in curve["rows"]]
        out += [""]
    return out


def figure(records: Iterable[dict[str, Any]], *, title: str) -> plt.Figure | None:
    """Reconstruction MSE and accuracies against iterations (log axis), one line style per generator."""
    measured = [(sha, g) for sha, g in sorted(curves(records).items()) if g.get("quality_curve")]
    if not measured:
        return None
    fig, (ax_mse, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.6))
    for sha, gen in measured:
        rows = gen["quality_curve"]["rows"]
        its = [r["iteration"] for r in rows]
        ax_mse.plot(its, [r["rec_mse_clean"] for r in rows], "o-", label=sha[:8])
        for key, style, name in (("acc_clean_projected", "o-", "clean, projected"),
                                 ("acc_fgsm_projected", "s-", "FGSM, projected"),
                                 ("acc_fgsm", "x:", "FGSM, no defense")):
            ax_acc.plot(its, [r[key] for r in rows], style, label=f"{name} · {sha[:8]}")
    ax_mse.set(xscale="log", xlabel="generator iterations", ylabel="clean reconstruction MSE", title="projection error")
    ax_acc.set(xscale="log", xlabel="generator iterations", ylabel="accuracy", ylim=(0, 1.02),
               title="accuracy after projection")
    ax_mse.legend(fontsize=6)
    ax_acc.legend(fontsize=6, loc="lower right")
    fig.suptitle(f"{title}: Defense-GAN generator quality during training", fontsize=10)
    fig.tight_layout()
    return fig
