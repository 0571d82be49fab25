"""The Defense-GAN white-box tables end to end: spec → cells → records → report, with real components.

The generator is the shipped artifact when there is one, else a WGAN-GP trained for a couple of iterations in
the test's own cache (``settings.gan_iters``): the plumbing is real, the numbers are not measurements.
The fast test runs a reduced grid (model A, three attacks); the slow ones run both smoke tables as CI does.
"""
from __future__ import annotations

import json

import pytest

from bench.report import build_report, write_report
from bench.runner import run
from bench.spec import load_spec
from tests.conftest import needs_mnist

COLUMNS = {"Defense-GAN-Orig", "Defense-GAN-Orig (unrolled)", "Defense-GAN-Orig (bpda)", "Defense-GAN-Rec",
           "Defense-GAN-Rec (unrolled)", "MagNet", "MagNet (unrolled)", "Adv. Tr."}
TINY = {"models": ["A"], "n": 6, "n_defended": 2, "batch_size": 6, "train": {"train_images": 300},
        "settings": {"gan_iters": 2, "rec_train_images": 20, "magnet_train_images": 300},
        "attacks": [{"key": "none"}, {"key": "fgsm", "eps": [0.3], "backends": ["torchattacks"]},
                    {"key": "pgd-l2", "eps": [4.0], "alpha": 1.0, "steps": 2, "threats": ["bpda"]}]}


def _check(root, spec) -> None:
    records = [json.loads(p.read_text()) for p in sorted((root / "cells").glob("*.json"))]
    assert not list((root / "failed").glob("*.json")), "every cell must finish"
    for r in records:
        c = r["config"]
        assert c["n"] == (spec.n if c["defense"] == "none" else min(spec.n, spec.n_defended))
        if c["defense"] == "defense-gan":
            assert len(r["per_sample"]["clean_rec_mse"]) == c["n"] and r["notes"]["defense"]["deviations"]
            if c["attack"] == "none":
                assert r["notes"]["samples"]["purified"]["shape"] == [c["n"], 1, 28, 28]
            elif c["threat"] == "oblivious":  # the sample sheet's adversarial rows
                assert r["notes"]["samples"]["inputs"]["shape"] == [min(c["n"], 8), 1, 28, 28]
            if c["threat"] in ("unrolled", "bpda"):
                assert 0 <= r["metrics"]["grad_zero_fraction"] <= 1
            if c["defense_label"] == "Defense-GAN-Rec":
                trained = r["notes"]["classifier"]
                assert trained["config"]["train_images"] == spec.settings["rec_train_images"] and trained["transform"]
    report = build_report(root)
    assert COLUMNS <= set(report.table["column"].astype(str))
    columns = list(report.table["column"].cat.categories)
    labels = [d.get("label", d["key"]) for d in spec.defenses if d["key"] != "none"]
    first = [min(i for i, c in enumerate(columns) if c.startswith(label)) for label in labels]
    assert columns[:2] == ["No Attack", "No Defense"] and first == sorted(first), columns  # the spec's order
    assert (report.tidy["metric"] == "detection_auc").any()
    assert "Threat settings" in report.texts["table.md"]
    assert {"detection_roc.png", "sample_sheet.png"} <= set(report.figures)
    first = write_report(report, root / "a")
    second = write_report(build_report(root), root / "b")
    for a, b in zip(first, second):  # reports are pure functions of the records
        assert a.name == b.name and a.read_bytes() == b.read_bytes(), a.name


@needs_mnist
def test_reduced_defensegan_table_end_to_end(tmp_path, isolated_cache):
    spec = load_spec("defensegan-whitebox-mnist", profile="smoke", overrides=TINY)
    summary = run(spec, out=tmp_path, device="cpu")
    assert summary.failed == 0 and summary.computed == summary.total
    _check(tmp_path / spec.key / "smoke", spec)


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize("experiment", ["defensegan-whitebox-mnist", "defensegan-whitebox-fmnist",
                                        "defensegan-sweep", "defensegan-unrolled"])
def test_smoke_experiment(tmp_path, isolated_cache, experiment):
    """Each Defense-GAN experiment's smoke profile runs end to end and reports from its records."""
    spec = load_spec(experiment, profile="smoke")
    summary = run(spec, out=tmp_path, device="cpu")
    assert summary.failed == 0 and summary.computed == summary.total
    root = tmp_path / spec.key / "smoke"
    if experiment.startswith("defensegan-whitebox"):
        # 4 models × (6 undefended, 10 Defense-GAN-Orig, 6 Rec, 6 MagNet, 4 Adv. Tr., 4 nearest-train cells)
        assert summary.total == 144
        _check(root, spec)
        return
    records = [json.loads(p.read_text()) for p in sorted((root / "cells").glob("*.json"))]
    unrolled = [r for r in records if r["config"]["threat"] == "unrolled"]
    assert bool(unrolled) == (experiment == "defensegan-unrolled")
    for r in unrolled:  # the gradient evidence beside the accuracy
        assert 0 <= r["metrics"]["grad_zero_fraction"] <= 1 and r["metrics"]["linf_max"] <= 0.3 + 1e-6
    report = build_report(root)
    assert "grad 0" in report.texts["defensegan.md"] and "sample_sheet.png" in report.figures


@needs_mnist
def test_a_trained_generator_is_the_same_fresh_or_reloaded(isolated_cache, monkeypatch):
    """Without an artifact, every process uses the run's fp16 snapshot, so one-process and Ray tables agree."""
    import torch

    from defenses.defensegan import artifacts, factory

    monkeypatch.setattr(artifacts, "WEIGHTS_DIR", isolated_cache / "no-artifact")
    monkeypatch.setattr(factory, "_TRAINED", {})
    fresh, prov = factory.load_or_train_generator("mnist", gan_iters=1, gan_seed=3, progress=False)
    factory._TRAINED.clear()  # as in another process: read back from the run folder
    again, prov_again = factory.load_or_train_generator("mnist", gan_iters=1, gan_seed=3, progress=False)
    assert prov == prov_again and prov["snapshot"] == "G-iter1.fp16.pt" and len(prov["sha256"]) == 64
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), again.state_dict().values()))
    assert not fresh.training and not any(p.requires_grad for p in fresh.parameters())
