"""Stored records → the tidy ``results.csv`` frame (one row per measurement), with paper values attached.

Columns: experiment, dataset, model, defense, attack, backend, threat, norm, eps, yaw, n, metric, value,
ci_low, ci_high, paper_value, paper_source, paper_status, record. ``record`` is the key of the stored cell
record every number comes from. Accuracies and rates carry 95 % Wilson intervals computed from the stored
per-sample outcomes.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import pandas as pd

from bench.metrics import wilson_interval

COLUMNS = ["experiment", "dataset", "model", "defense", "attack", "backend", "threat", "norm", "eps", "yaw", "n",
           "metric", "value", "ci_low", "ci_high", "paper_value", "paper_source", "paper_status", "record"]
PROPORTIONS = {"accuracy", "clean_accuracy", "attack_success_rate", "rank1"}


def measurement(metric: str, value: float, *, k: int | None = None, n: int | None = None, **where: Any) -> dict:
    """One tidy row; ``k``/``n`` give a Wilson interval for proportions."""
    low, high = wilson_interval(k, n) if k is not None and n else (math.nan, math.nan)
    return {"metric": metric, "value": float(value), "ci_low": low, "ci_high": high, "n": n, **where}


def classifier_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Tidy rows of one classifier-track record, recomputed from its per-sample outcomes."""
    from bench.metrics import attack_success_rate

    cfg, rows, metrics = record["config"], record["per_sample"], record["metrics"]
    y, clean, adv = rows["y"], rows["clean_pred"], rows["adv_pred"]
    n = len(y)
    k_adv = sum(a == t for a, t in zip(adv, y))
    out = [measurement("accuracy", k_adv / n, k=k_adv, n=n)]
    if cfg["attack"] != "none":
        k_clean = sum(c == t for c, t in zip(clean, y))
        rate, k_flip, n_correct = attack_success_rate(y, clean, adv)
        out += [measurement("clean_accuracy", k_clean / n, k=k_clean, n=n),
                measurement("attack_success_rate", rate, k=k_flip, n=n_correct)]
        out += [measurement(m, metrics[m], n=n) for m in ("linf_max", "linf_mean", "l2_mean", "grad_zero_fraction")
                if m in metrics]
    return out


def _where(record: dict[str, Any]) -> dict[str, Any]:
    cfg = record["config"]
    return {"experiment": cfg["experiment"], "dataset": cfg["dataset"], "model": cfg["model"],
            "defense": cfg["defense_label"], "attack": cfg["attack"], "backend": cfg["backend"] or record.get("notes", {}).get("backend", ""),
            "threat": cfg["threat"], "norm": record.get("notes", {}).get("norm", ""), "eps": cfg["eps"],
            "record": record["key"]}


def _paper_lookup(paper: Iterable[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    return {(p.get("model"), p.get("attack"), p.get("defense", "none"), p.get("threat"), p.get("metric", "accuracy"),
             p.get("eps"), p.get("yaw")): p for p in paper}


def _paper_for(row: dict[str, Any], lookup: dict[tuple, dict[str, Any]]) -> dict[str, Any] | None:
    yaw = None if row.get("yaw") is None or pd.isna(row.get("yaw")) else int(row["yaw"])
    for threat in (row["threat"], None):
        for eps in (row["eps"], None):
            hit = lookup.get((row["model"], row["attack"], row["defense"], threat, row["metric"], eps, yaw))
            if hit is not None:
                return hit
    return None


def tidy_frame(records: Iterable[dict[str, Any]], paper: Iterable[dict[str, Any]] = ()) -> pd.DataFrame:
    """The tidy frame of ``records`` (sorted deterministically), with matching paper values."""
    from bench.registry import import_target
    from bench.tracks import TIDY

    lookup = _paper_lookup(paper)
    rows = []
    for record in records:
        where = _where(record)
        for row in import_target(TIDY[record["config"]["track"]])(record):
            full = {**where, **row}
            hit = _paper_for(full, lookup)
            full.update(paper_value=hit["value"] if hit else math.nan, paper_source=hit["source"] if hit else "",
                        paper_status=hit["status"] if hit else "")
            rows.append(full)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    sort = ["experiment", "model", "defense", "attack", "backend", "threat", "eps", "yaw", "metric"]
    return frame.sort_values(sort, na_position="first", kind="stable").reset_index(drop=True)
