"""Reports: pure functions of the stored records (``cells/*.json``) and the stored spec snapshot.

``build_report(root)`` returns frames, texts and figures; ``write_report`` puts them on disk:
``results.csv`` (tidy), ``table.md``/``table.tex``/``table.csv`` (paper layout), ``manifest.json``, ``*.png``.
Nothing here reads the clock or the environment, so rebuilding from the same records gives the same files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchError
from bench.store import Store


@dataclass
class Report:
    title: str
    tidy: pd.DataFrame
    table: pd.DataFrame
    texts: dict[str, str]
    manifest: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)


def _manifest(spec: dict[str, Any], records: list[dict], failures: list[dict]) -> dict[str, Any]:
    from bench.report.weights import classifier_weights

    commits = sorted({str(r["git"].get("commit")) for r in records})
    return {
        "experiment": spec.get("key"), "profile": spec.get("profile"), "title": spec.get("title"),
        "spec": spec, "n_records": len(records), "git_commits": commits,
        "dirty": any(bool(r["git"].get("dirty")) for r in records),
        "versions": sorted({json.dumps(r["versions"], sort_keys=True) for r in records}),
        "devices": sorted({r["machine"]["device"] for r in records}),
        "classifier_weights": classifier_weights(records),
        "wall_seconds_total": round(sum(r.get("wall_seconds", 0.0) for r in records), 1),
        "records": [{"key": r["key"], "label": _label(r), "status": r["status"], "seed": r["seed"],
                     "git": r["git"].get("commit"), "wall_seconds": round(r.get("wall_seconds", 0.0), 1)}
                    for r in records],
        "failed": [{"key": r["key"], "label": _label(r), "error": r.get("error")} for r in failures],
    }


def _label(record: dict[str, Any]) -> str:
    c = record["config"]
    eps = "" if c["eps"] is None else f" eps={c['eps']:g}"
    return f"{c['model']} | {c['defense_label']} | {c['attack']}{eps} | {c['threat']}"


def build_report(root: Path) -> Report:
    """Build the report of one ``<out>/<experiment>/<profile>`` folder from its stored records."""
    from bench.registry import import_target
    from bench.report import plots, tables
    from bench.report.tidy import tidy_frame
    from bench.report.weights import mixed_note

    store = Store(root)
    spec_file = store.root / "spec.json"
    if not spec_file.is_file():
        raise BenchError(f"{root}: not a results folder (no spec.json); expected <out>/<experiment>/<profile>")
    spec = json.loads(spec_file.read_text())
    records = list(store.records())
    if not records:
        raise BenchError(f"{root}: no finished cell records in {store.cells_dir}")
    title = f"{spec.get('title', spec.get('key'))} — profile {spec.get('profile')}"
    tidy = tidy_frame(records, spec.get("paper", []))
    report = Report(title=title, tidy=tidy, table=pd.DataFrame(), texts={},
                    manifest=_manifest(spec, records, list(store.failures())))
    if spec.get("track", "classifier") == "faces":
        import_target("bench.tracks.faces_report:extend_report")(report, records, spec)
        return report
    # a spec names a defense by key ("median") or as a table; the label defaults to the key (spec_checks)
    order = [d if isinstance(d, str) else d.get("label", d["key"]) for d in spec.get("defenses", [])]
    report.table = tables.paper_table(tidy, defense_order=order)
    report.texts = {"table.md": tables.markdown(report.table, title=title,
                                                warning=mixed_note(report.manifest["classifier_weights"])),
                    "table.tex": tables.latex(report.table, title=title)}
    report.figures["accuracy_bars.png"] = plots.accuracy_bars(report.table, title=title)
    curve = plots.accuracy_vs_eps(tidy, title=title)
    if curve is not None:
        report.figures["accuracy_vs_eps.png"] = curve
    if any(r["config"]["defense"] == "defense-gan" for r in records):  # detection ROC, generator quality, sweep
        import_target("bench.report.defensegan:extend_report")(report, records, spec)
    return report


def write_report(report: Report, out: Path) -> list[Path]:
    """Write every file of ``report`` into ``out``; returns the paths written."""
    import matplotlib.pyplot as plt

    from bench.cache import atomic_write_text
    from bench.report.tables import wide

    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, text: str) -> None:
        atomic_write_text(out / name, text)
        written.append(out / name)

    put("results.csv", report.tidy.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    if not report.table.empty:
        put("table.csv", wide(report.table).to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    for name, text in report.texts.items():
        put(name, text)
    put("manifest.json", json.dumps(report.manifest, indent=1, sort_keys=True, default=str) + "\n")
    for name, fig in report.figures.items():
        fig.savefig(out / name, dpi=110, metadata={"Software": None})
        plt.close(fig)
        written.append(out / name)
    return written
