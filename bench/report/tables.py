"""Paper-layout views of the tidy frame: rows (attack, model), columns No Attack | No Defense | defenses.

Each column shows ours (with its 95 % interval), the paper's value and Δ = ours − paper. Paper values
whose provenance is "recalled" (not checked against the PDF) are marked † and called unverified.
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

UNVERIFIED = "†"
FOOTNOTE = (f"{UNVERIFIED} paper value recalled from memory of the paper, not verified against the PDF "
            "(see reference/defensegan.md); ‡ from a secondary source.")
_MARK = {"recalled": UNVERIFIED, "secondary": "‡", "confirmed": ""}
ATTACK_NAMES = {"none": "No attack", "fgsm": "FGSM", "rand-fgsm": "RAND+FGSM", "cw": "CW", "pgd": "PGD",
                "pgd-l2": "PGD-L2"}

_ORDER = {name: i for i, name in enumerate(ATTACK_NAMES.values())}
_THREAT_ORDER = {"none": 0, "oblivious": 1, "unrolled": 2, "bpda": 3}  # a defense's columns, left to right
THREATS_NOTE = ("Threat settings: a column named by its defense alone is *oblivious* (the attack saw the defense's "
                "classifier, not its purifier; for a defense without a purifier, such as Adv. Tr., that is the full "
                "white-box); *(unrolled)*: gradients through the purifier's own computation; *(bpda)*: forward "
                "through the purifier, identity backward; *(no attack)*: clean images through the defense.")


def _row_label(row: pd.Series, multi_backend: bool) -> str:
    name = ATTACK_NAMES.get(row["attack"], row["attack"])
    if not pd.isna(row["eps"]):
        name += f" ε={row['eps']:g}"
    return f"{name} [{row['backend']}]" if multi_backend and row["backend"] else name


def _column(row: pd.Series) -> str:
    if row["defense"] == "none":
        return "No Attack" if row["attack"] == "none" else "No Defense"
    return row["defense"] if row["threat"] in ("none", "oblivious") and row["attack"] != "none" else (
        f"{row['defense']} ({row['threat']})" if row["attack"] != "none" else f"{row['defense']} (no attack)")


def column_parts(column: str) -> tuple[str, str]:
    """The inverse of :func:`_column` for a defense column: "MagNet (unrolled)" -> ("MagNet", "unrolled");
    a column without a suffix (No Attack, No Defense, an oblivious defense) has threat ""."""
    defense, _, threat = column.partition(" (")
    return defense, threat.removesuffix(")")


def paper_table(frame: pd.DataFrame, defense_order: Sequence[str] = ()) -> pd.DataFrame:
    """Long paper-layout table: one row per (attack row, model, column) with ours, interval, paper, Δ.

    Defense columns follow ``defense_order`` (the spec's defense labels, in the spec's order), then any other
    defense alphabetically; each defense's columns go no attack, oblivious, unrolled, bpda."""
    acc = frame[frame["metric"] == "accuracy"].copy()
    if acc.empty:
        return pd.DataFrame(columns=["attack", "model", "column", "ours", "ci_low", "ci_high", "paper", "mark", "delta"])
    multi = acc[acc["attack"] != "none"].groupby("attack")["backend"].nunique().gt(1).to_dict()
    acc["column"] = acc.apply(_column, axis=1)
    attacked = acc[acc["attack"] != "none"]
    rows = []
    for _, r in attacked.iterrows():
        rows.append({"attack": _row_label(r, multi.get(r["attack"], False)), "model": r["model"], "column": r["column"],
                     "ours": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "paper": r["paper_value"],
                     "mark": _MARK.get(r["paper_status"], "")})
    clean = acc[acc["attack"] == "none"]
    for label in dict.fromkeys(row["attack"] for row in rows):
        for _, r in clean.iterrows():
            rows.append({"attack": label, "model": r["model"], "column": r["column"], "ours": r["value"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"], "paper": r["paper_value"],
                         "mark": _MARK.get(r["paper_status"], "")})
    table = pd.DataFrame(rows)
    table["delta"] = table["ours"] - table["paper"]
    position = {label: i for i, label in enumerate(dict.fromkeys(defense_order))}
    rank = {c: (position.get(d, len(position)), d, _THREAT_ORDER.get(t, 9))
            for c, d, t in zip(acc["column"], acc["defense"], acc["threat"])}
    order = ["No Attack", "No Defense", *sorted(set(table["column"]) - {"No Attack", "No Defense"}, key=rank.get)]
    table["column"] = pd.Categorical(table["column"], categories=order, ordered=True)
    labels = sorted(dict.fromkeys(table["attack"]), key=lambda a: (_ORDER.get(a.split(" ")[0], 99), a))
    table["attack"] = pd.Categorical(table["attack"], categories=labels, ordered=True)
    return table.sort_values(["attack", "model", "column"]).reset_index(drop=True)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """``table.csv``: one row per (attack, model); per column ``ours``, ``ci_low``, ``ci_high``, ``paper``, ``delta``."""
    if table.empty:
        return pd.DataFrame()
    pivot = table.pivot_table(index=["attack", "model"], columns="column", observed=True, dropna=False,
                              values=["ours", "ci_low", "ci_high", "paper", "delta"], aggfunc="first")
    pivot = pivot.swaplevel(0, 1, axis=1)
    columns = [c for c in table["column"].cat.categories if c in pivot.columns.get_level_values(0)]
    pivot = pivot.reindex(columns=[(c, v) for c in columns for v in ("ours", "ci_low", "ci_high", "paper", "delta")])
    pivot.columns = [f"{c} {v}" for c, v in pivot.columns]
    return pivot.reset_index()


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _cell(r: pd.Series, *, latex: bool) -> str:
    ours = f"{_fmt(r['ours'])} [{_fmt(r['ci_low'], 2)}, {_fmt(r['ci_high'], 2)}]"
    if pd.isna(r["paper"]):
        return ours
    sign = "+" if r["delta"] >= 0 else "−"
    mark = r["mark"].replace(UNVERIFIED, "$^\\dagger$").replace("‡", "$^\\ddagger$") if latex else r["mark"]
    paper = f"{_fmt(r['paper'])}{mark}"
    delta = f"{'$-$' if latex and sign == '−' else sign}{abs(r['delta']):.3f}"
    return f"{ours} / {paper} (Δ {delta})" if not latex else f"{ours} / {paper} ($\\Delta$ {delta})"


def grid(table: pd.DataFrame, *, latex: bool, cell=None) -> tuple[list[str], list[list[str]]]:
    """Header and body rows of a paper-layout table; ``cell(row, latex=...)`` formats one entry."""
    cell = cell or _cell
    columns = [c for c in table["column"].cat.categories if c in set(table["column"])]
    body = []
    for (attack, model), group in table.groupby(["attack", "model"], observed=True, sort=True):
        by_col = {r["column"]: cell(r, latex=latex) for _, r in group.iterrows()}
        body.append([str(attack), str(model), *[by_col.get(c, "") for c in columns]])
    return ["Attack", "Model", *columns], body


def markdown(table: pd.DataFrame, *, title: str, warning: str = "") -> str:
    """``table.md``: ours [95 % CI] / paper (Δ) per column; a ``warning`` goes under the table."""
    header, body = grid(table, latex=False)
    lines = [f"## {title}", "", "Accuracy: ours [95 % Wilson CI] / paper (Δ = ours − paper).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    legend = [THREATS_NOTE, ""] if set(header[2:]) - {"No Attack", "No Defense"} else []
    return "\n".join([*lines, "", *([warning, ""] if warning else []), *legend, FOOTNOTE, ""])


def latex(table: pd.DataFrame, *, title: str) -> str:
    """``table.tex``: a booktabs tabular with the same content as ``table.md``."""
    header, body = grid(table, latex=True)
    esc = lambda s: s.replace("&", "\\&").replace("%", "\\%").replace("_", "\\_").replace("ε", "$\\epsilon$")  # noqa: E731
    lines = [f"% {title}", "\\begin{tabular}{ll" + "l" * (len(header) - 2) + "}", "\\toprule",
             " & ".join(esc(h) for h in header) + " \\\\", "\\midrule"]
    lines += [" & ".join(esc(c) for c in row) + " \\\\" for row in body]
    lines += ["\\bottomrule", "\\end{tabular}", f"% {FOOTNOTE}", ""]
    return "\n".join(lines)
