"""Measure a shipped generator's quality along its training run and store it in the artifact's provenance.

For each generator snapshot of the run up to the shipped iteration, and for the shipped generator, it
measures, on the first ``n`` test images: the clean reconstruction MSE, and a harness-trained classifier's accuracy on clean images,
on oblivious FGSM images, and on the Defense-GAN projections of both (:func:`quality.snapshot_curve`). The
rows go into ``weights/<dataset>-wgan-gp.json`` under ``quality_curve`` together with the settings and the
classifier's cache key, so every Defense-GAN record carries them (``notes.defense.generator``) and every
report can draw the curve from the records alone::

    python -m defenses.defensegan.curve --dataset mnist            # quick-profile settings: n 200, L 50, R 2

The classifier is the harness's own (``bench.models.training``; quick-profile training: 2 epochs), trained
first when it is not cached. The weights file and its SHA-256 are untouched.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from bench.cache import atomic_write_text

log = logging.getLogger(__name__)


def setup(dataset: str, *, model: str = "A", epochs: int = 2, n: int = 200, eps: float = 0.3, L: int = 50,
          R: int = 2, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(classifier, first ``n`` test images, their labels, the settings that identify a measurement)."""
    from bench import data
    from bench.builtins import register_builtins
    from bench.models.training import TrainConfig, train_classifier
    from bench.registry import MODELS

    register_builtins()
    clf = train_classifier(model, dataset, config=TrainConfig(epochs=epochs), seed=seed,
                           device=torch.device("cpu"), factory=MODELS.get(model))
    test = data.load(dataset, "test")
    meta = getattr(clf, "bench_meta", {})
    settings = {"n": n, "eps": eps, "L": L, "R": R, "seed": seed, "attack": "fgsm (oblivious)",
                "classifier": model, "classifier_epochs": epochs, "classifier_sha256": meta.get("sha256"),
                "test_sha256": test.sha256}
    return clf, test.x[:n], test.y[:n], settings


def measure(dataset: str, run: Path, *, upto: int, previous: dict[str, Any] | None = None,
            **setup_kw: Any) -> dict[str, Any]:
    """The ``quality_curve`` entry: settings, the classifier's identity and one row per snapshot ≤ ``upto``.

    Iterations already in ``previous`` under the same settings (same classifier, images and projection) are
    not measured again; :func:`merge` keeps their rows. ``export`` keeps a curve only for the same training
    history, so an iteration names one generator: the fp16 snapshot (or shipped file) that this measures, not
    the rows ``train --until-plateau`` logged for its stopping rule."""
    from defenses.defensegan import quality
    from defenses.defensegan.artifacts import load_artifact
    from defenses.defensegan.wgan_gp import list_snapshots

    clf, x, y, settings = setup(dataset, **setup_kw)
    same = bool(previous) and previous.get("settings") == settings
    known = {row["iteration"] for row in previous["rows"]} if same else set()
    iterations = [it for it in list_snapshots(run) if it <= upto and it not in known]
    started = time.perf_counter()
    kw = {k: settings[k] for k in ("eps", "L", "R", "seed")}
    rows = quality.snapshot_curve(run, clf, x, y, iterations=iterations, **kw)
    if upto not in iterations and upto not in known:  # the shipped generator is no snapshot: measure it too
        gen, _ = load_artifact(dataset)
        rows.append({"iteration": upto, **quality.generator_row(gen, clf, x, y, **kw)})
    return {"settings": settings, "seconds": round(time.perf_counter() - started, 1), "rows": rows}


def merge(previous: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` plus the rows of ``previous`` at iterations ``new`` did not measure, when both used the same
    settings (same classifier, images and projection): a run resumed on a machine that no longer holds the
    early snapshots keeps their measured rows. Rows are sorted by iteration."""
    if not previous or previous.get("settings") != new["settings"]:
        return new
    measured = {row["iteration"] for row in new["rows"]}
    kept = [row for row in previous["rows"] if row["iteration"] not in measured]
    return {**new, "rows": sorted([*kept, *new["rows"]], key=lambda row: row["iteration"])}


def main(argv: list[str] | None = None) -> None:
    from defenses.defensegan.artifacts import artifact_paths, find_run, verify_artifact

    p = argparse.ArgumentParser(prog="python -m defenses.defensegan.curve", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion-mnist"])
    p.add_argument("--run-dir", type=Path, default=None, help="training folder (default: the cached run)")
    p.add_argument("--model", default="A")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--L", type=int, default=50)
    p.add_argument("--R", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--remeasure", action="store_true", help="measure every snapshot again, not only new ones")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    prov = verify_artifact(args.dataset)
    run = args.run_dir or find_run(args.dataset)
    upto = int(prov["iterations"])
    previous = None if args.remeasure else prov.get("quality_curve")
    curve = merge(previous, measure(args.dataset, run, upto=upto, previous=previous, model=args.model, n=args.n,
                                    L=args.L, R=args.R))
    curve["rows"] = [row for row in curve["rows"] if row["iteration"] <= upto]
    prov["quality_curve"] = curve
    _, js = artifact_paths(args.dataset)
    atomic_write_text(js, json.dumps(prov, indent=2, sort_keys=True) + "\n")
    for row in prov["quality_curve"]["rows"]:
        log.info("iteration %6d  rec MSE %.4f  acc projected clean %.3f  FGSM %.3f (no defense %.3f)",
                 row["iteration"], row["rec_mse_clean"], row["acc_clean_projected"], row["acc_fgsm_projected"],
                 row["acc_fgsm"])
    log.info("wrote quality_curve into %s", js)


if __name__ == "__main__":
    from bench.errors import run_module

    run_module(main, "python -m defenses.defensegan.curve")
