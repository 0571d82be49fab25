"""Paper-layout tables of the faces track, from the tidy frame (see :mod:`bench.tracks.faces_report`).

``rank1_table`` is the long table behind ``table.md`` / ``table.tex`` / ``table.csv``, in the generic
report's format (attack, model, column, ours, ci_low, ci_high, paper, mark, delta): rows are (attack row,
model), columns the |yaw| groups "0°", "±15°", … "±90°" and "all". Values are fractions; the Markdown and
LaTeX show percentages. Paper values marked † are recalled (unverified), ‡ from a secondary source.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from bench.report.tables import ATTACK_NAMES

MARK = {"recalled": "†", "secondary": "‡", "confirmed": ""}
FOOTNOTE = ("† paper value recalled from memory of the paper, not verified against the PDF (reference/faces.md "
            "§1.5); ‡ from a secondary source (a third-party reproduction).")
_COLUMNS = ["0°", *[f"±{y}°" for y in range(15, 91, 15)], "all"]
_GOALS = {"none": "", "dodging": "dodging", "impersonation": "impersonation"}


def _yaw_column(yaw: Any) -> str:
    return "all" if yaw is None or (isinstance(yaw, float) and math.isnan(yaw)) else (
        "0°" if int(yaw) == 0 else f"±{int(yaw)}°")


def eps_label(eps: Any) -> str:
    """ε as k/255 when it is one (the usual way face papers quote budgets), else %g."""
    if eps is None or (isinstance(eps, float) and math.isnan(eps)):
        return ""
    k = eps * 255
    return f"ε={k:g}/255" if abs(k - round(k)) < 1e-6 else f"ε={eps:g}"


def attack_label(row: pd.Series, multi_backend: bool) -> str:
    """"No attack", or e.g. "FGSM ε=2/255 dodging", "CW [foolbox] impersonation"."""
    if row["attack"] == "none":
        return ATTACK_NAMES["none"]
    parts = [ATTACK_NAMES.get(row["attack"], row["attack"])]
    if eps_label(row["eps"]):
        parts.append(eps_label(row["eps"]))
    if multi_backend and row["backend"]:
        parts.append(f"[{row['backend']}]")
    parts.append(_GOALS.get(row["threat"], row["threat"]))
    return " ".join(p for p in parts if p)


def _label_frame(frame: pd.DataFrame) -> pd.Series:
    attacked = frame[frame["attack"] != "none"]
    multi = attacked.groupby("attack")["backend"].nunique().gt(1).to_dict()
    return frame.apply(lambda r: attack_label(r, multi.get(r["attack"], False)), axis=1)


def rank1_table(tidy: pd.DataFrame, paper: list[dict[str, Any]]) -> pd.DataFrame:
    """Long rank-1 table by |yaw| group (clean and under each attack), plus paper-only rows (models not run)."""
    r1 = tidy[tidy["metric"] == "rank1"].copy()
    if r1.empty:
        return pd.DataFrame(columns=["attack", "model", "column", "ours", "ci_low", "ci_high", "paper", "mark",
                                     "delta"])
    r1["label"] = _label_frame(r1)
    rows = [{"attack": r["label"], "model": r["model"], "column": _yaw_column(r["yaw"]), "ours": r["value"],
             "ci_low": r["ci_low"], "ci_high": r["ci_high"], "paper": r["paper_value"],
             "mark": MARK.get(r["paper_status"], "")} for _, r in r1.iterrows()]
    ran = set(r1["model"])
    for p in paper:
        if p.get("metric") == "rank1" and p.get("model") not in ran and p.get("attack", "none") == "none":
            rows.append({"attack": ATTACK_NAMES["none"], "model": f"{p['model']} (paper)",
                         "column": _yaw_column(p.get("yaw")), "ours": math.nan, "ci_low": math.nan,
                         "ci_high": math.nan, "paper": float(p["value"]), "mark": MARK.get(p["status"], "")})
    table = pd.DataFrame(rows)
    table["delta"] = table["ours"] - table["paper"]
    table["column"] = pd.Categorical(table["column"], categories=_COLUMNS, ordered=True)
    labels = sorted(set(table["attack"]), key=lambda a: (a != ATTACK_NAMES["none"], a))
    table["attack"] = pd.Categorical(table["attack"], categories=labels, ordered=True)
    models = sorted(set(table["model"]), key=lambda m: (m.endswith("(paper)"), m))   # paper-only rows last
    table["model"] = pd.Categorical(table["model"], categories=models, ordered=True)
    return table.sort_values(["attack", "model", "column"]).reset_index(drop=True)


def _pct(v: float, digits: int = 1) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.{digits}f}"


def _num(v: float | None, digits: int) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def _cell(r: pd.Series, *, latex: bool, ci: bool = True) -> str:
    ours = _pct(r["ours"])
    if ci and not math.isnan(r["ours"]) and not math.isnan(r["ci_low"]):
        ours += f" [{_pct(r['ci_low'], 0)}, {_pct(r['ci_high'], 0)}]"
    if math.isnan(r["paper"]):
        return ours
    mark = r["mark"].replace("†", "$^\\dagger$").replace("‡", "$^\\ddagger$") if latex else r["mark"]
    text = f"{ours} / {_pct(r['paper'])}{mark}"
    if not math.isnan(r["delta"]):
        d = 100 * r["delta"]
        sign = ("$-$" if latex else "−") if d < 0 else "+"
        text += f" (Δ {sign}{abs(d):.1f})" if not latex else f" ($\\Delta$ {sign}{abs(d):.1f})"
    return text


def _grid(table: pd.DataFrame, *, latex: bool) -> tuple[list[str], list[list[str]]]:
    from bench.report.tables import grid
    return grid(table, latex=latex, cell=_cell)


def _md(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in body]]


def markdown(table: pd.DataFrame, *, title: str, notes: str = "") -> str:
    """``table.md``: rank-1 (%) by |yaw| with 95 % Wilson CI, paper value and Δ (percentage points)."""
    lines = [f"## {title}", "", "Rank-1 identification (%) by probe |yaw| (±y pools −y and +y); gallery = one "
             "frontal, neutral-light image per test identity. Ours [95 % Wilson CI] / paper (Δ = ours − paper).", ""]
    lines += _md(*_grid(table, latex=False))
    lines += ["", FOOTNOTE]
    if notes:
        lines += ["", "Notes: " + " ".join(notes.split())]
    return "\n".join([*lines, ""])


def latex(table: pd.DataFrame, *, title: str) -> str:
    """``table.tex``: a booktabs tabular with the content of ``table.md``."""
    header, body = _grid(table, latex=True)
    def esc(text: str) -> str:
        for old, new in (("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("ε", "$\\epsilon$"), ("±", "$\\pm$"),
                         ("°", "$^\\circ$")):
            text = text.replace(old, new)
        return text

    lines = [f"% {title}", "\\begin{tabular}{ll" + "l" * (len(header) - 2) + "}", "\\toprule",
             " & ".join(esc(h) for h in header) + " \\\\", "\\midrule"]
    lines += [" & ".join(esc(c) if "$" not in c else c.replace("±", "$\\pm$") for c in row) + " \\\\"
              for row in body]
    lines += ["\\bottomrule", "\\end{tabular}", f"% {FOOTNOTE}", ""]
    return "\n".join(lines)


def _pivot(frame: pd.DataFrame, fmt: Any, index: list[str]) -> tuple[list[str], list[list[str]]]:
    frame = frame.assign(column=frame["yaw"].map(_yaw_column))
    columns = [c for c in _COLUMNS if c in set(frame["column"])]
    body = []
    for key, group in frame.groupby(index, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        by_col = {r["column"]: fmt(r) for _, r in group.iterrows()}
        body.append([*(str(k) for k in key), *[by_col.get(c, "") for c in columns]])
    return [*index, *columns], body


def signed_yaw_markdown(tidy: pd.DataFrame, *, title: str) -> str:
    """``rank1_by_yaw.md``: rank-1 (%) per signed probe yaw, clean and under each attack."""
    frame = tidy[tidy["metric"] == "rank1_signed_yaw"].copy()
    frame["attack row"] = _label_frame(frame) if not frame.empty else []
    yaws = sorted(set(frame["yaw"].astype(int)))
    lines = [f"## {title}", "", "Rank-1 (%) per signed probe yaw (degrees). Paper values (‡ secondary) after /.", ""]
    body = []
    groups = sorted(frame.groupby(["attack row", "model"], sort=True), key=lambda kv: (kv[0][0] != "No attack", kv[0]))
    for (label, model), group in groups:
        by = {int(r["yaw"]): _pct(r["value"]) + ("" if math.isnan(r["paper_value"]) else
                                                  f" / {_pct(r['paper_value'])}{MARK.get(r['paper_status'], '')}")
              for _, r in group.iterrows()}
        body.append([label, model, *[by.get(y, "") for y in yaws]])
    lines += _md(["Attack", "Model", *[f"{y}°" for y in yaws]], body)
    return "\n".join([*lines, ""])


def verification_markdown(tidy: pd.DataFrame, records: list[dict[str, Any]], *, title: str) -> str:
    """``verification.md``: AUC, EER, TAR@FAR per |yaw| group (gallery vs probes), clean features."""
    names = {"auc": "ROC AUC", "eer": "EER", "tar_at_far_1e-2": "TAR @ FAR = 1e-2",
             "tar_at_far_1e-3": "TAR @ FAR = 1e-3"}
    lines = [f"## {title}", "", "Verification, gallery image vs probe: genuine = same identity, impostor = every "
             "other enrolled identity; scores = cosine of L2-normalised features.", ""]
    clean = tidy[tidy["attack"] == "none"]
    for metric, name in names.items():
        part = clean[clean["metric"] == metric]
        if part.empty:
            continue
        lines += [f"### {name}", ""]
        lines += _md(*_pivot(part, lambda r: "–" if math.isnan(r["value"]) else f"{r['value']:.3f}", ["model"]))
        lines.append("")
    pairs = next((r["metrics"]["verification"] for r in records if r["config"]["attack"] == "none"), {})
    counts = [f"{_yaw_column(None if k == 'all' else int(k))} {v['n_genuine']}/{v['n_impostor']}"
              for k, v in pairs.items()]
    lines.append("Pairs per column (genuine / impostor): " + ", ".join(counts) + ".")
    if clean[clean["metric"].isin(list(names))]["value"].isna().any():
        lines += ["", "– : not measured; TAR at a FAR needs at least 1/FAR impostor pairs "
                  "(bench.faces.metrics.verification), see the pair counts."]
    return "\n".join([*lines, ""])


def robustness_markdown(tidy: pd.DataFrame, *, title: str) -> str:
    """``robustness.md``: attack success rate (%) per |yaw| and accept rates at the clean threshold."""
    attacked = tidy[tidy["attack"] != "none"].copy()
    attacked["attack row"] = _label_frame(attacked.assign(eps=math.nan))
    attacked["ε"] = attacked["eps"].map(lambda e: eps_label(e) or "minimal (CW)")
    lines = [f"## {title}", "", "Attack success rate (%) [95 % Wilson CI] by probe |yaw|. Dodging: rank-1 hits "
             "turned into misses (among probes hit clean); impersonation: top-1 = the target identity (among probes "
             "whose clean top-1 was not the target).", ""]
    asr = attacked[attacked["metric"] == "attack_success_rate"]
    def fmt(r: pd.Series) -> str:
        ci = "" if math.isnan(r["ci_low"]) else f" [{_pct(r['ci_low'], 0)}, {_pct(r['ci_high'], 0)}]"
        return _pct(r["value"]) + ci

    for label, part in asr.groupby("attack row", sort=True):
        lines += [f"### {label}", ""]
        lines += _md(*_pivot(part, fmt, ["model", "ε"]))
        lines.append("")
    lines += ["### Verification accept rate at the clean threshold (FAR 1e-2 on clean pairs), all attacked probes", "",
              "Dodging: genuine pairs accepted (clean → attacked); impersonation: pairs with the target "
              "accepted.", ""]
    body = []
    overall = attacked[attacked["yaw"].isna()]
    for (label, model, eps), part in overall.groupby(["attack row", "model", "ε"], sort=True):
        v = dict(zip(part["metric"], part["value"]))
        body.append([label, model, eps, _pct(v.get("clean_accept_rate_at_clean_threshold", math.nan)),
                     _pct(v.get("accept_rate_at_clean_threshold", math.nan)), _pct(v.get("clean_rank1", math.nan)),
                     _pct(v.get("rank1", math.nan)), _num(v.get("linf_mean"), 4), _num(v.get("l2_mean"), 3),
                     _num(v.get("l2_median_success"), 3)])
    lines += _md(["Attack", "Model", "ε", "accept clean", "accept attacked", "rank-1 clean", "rank-1 attacked",
                  "mean L∞", "mean L2", "median L2 (successes)"], body)
    return "\n".join([*lines, ""])
