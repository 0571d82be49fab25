"""Detection by Defense-GAN's reconstruction MSE (ROC / AUC) and the report sections built from records."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from bench.report import Report
from bench.report import defensegan as dg
from bench.report.tidy import COLUMNS
from bench.tracks.classifier import image_sheet


@pytest.mark.parametrize("clean,adv,auc", [
    ([0.1, 0.2], [0.3, 0.4], 1.0),             # every adversarial image reconstructs worse: perfect detection
    ([0.3, 0.4], [0.1, 0.2], 0.0),             # inverted
    ([0.2, 0.2], [0.2, 0.2], 0.5),             # ties count one half
    ([0.1, 0.4], [0.35, 0.8], 0.75),           # 3 of the 4 (clean, adversarial) pairs are ordered correctly
    ([0.1, 0.2, 0.3], [0.25], 2 / 3),          # unbalanced: the AUC is still the pairwise probability
])
def test_auc_on_hand_made_cases(clean, adv, auc):
    fpr, tpr, got = dg.detection_roc(clean, adv)
    assert got == pytest.approx(auc)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert all(b >= a for a, b in zip(fpr, fpr[1:])) and all(b >= a for a, b in zip(tpr, tpr[1:]))


def test_auc_needs_both_sides():
    with pytest.raises(ValueError, match="expected clean and adversarial scores"):
        dg.detection_roc([], [0.1])


def _record(key, *, attack="fgsm", threat="oblivious", label="Defense-GAN-Orig", clean_mse=(0.01, 0.02, 0.03),
            adv_mse=(0.05, 0.06, 0.01), params=None, wall=6.0, samples=None):
    n = len(clean_mse)
    notes = {"norm": "linf", "defense": {"generator": {"source": "artifact", "iterations": 1000, "seed": 0,
                                                       "sha256": "ab" * 32, "key": "k"},
                                         "purifier": {"L": 10, "R": 2, "variant": "orig", "unrolled_steps": None},
                                         "deviations": ["generator trained 1000 of the recipe's 200000 iterations"]}}
    if samples is not None:
        notes["samples"] = samples
    return {"key": key, "status": "ok", "wall_seconds": wall, "notes": notes,
            "metrics": {"clean_accuracy": 1.0, "grad_zero_fraction": 0.9, "grad_abs_mean": 1e-6, "linf_mean": 0.0,
                        "l2_mean": 0.0},
            "config": {"experiment": "t", "dataset": "mnist", "model": "A", "defense": "defense-gan",
                       "defense_label": label, "attack": attack, "backend": "torchattacks", "threat": threat,
                       "eps": None if attack == "none" else 0.3, "eot": 1, "n": n,
                       "defense_params": params or {"L": 10, "R": 2}},
            "per_sample": {"y": [1] * n, "clean_pred": [1] * n, "adv_pred": [1, 0, 1][:n],
                           "clean_rec_mse": list(clean_mse),
                           "adv_rec_mse": list(clean_mse if attack == "none" else adv_mse)}}


def test_detection_rows_are_tidy_and_skip_unattacked_cells():
    rows = dg.detection_rows([_record("k1"), _record("k0", attack="none")])
    assert len(rows) == 1 and set(rows[0]) == set(COLUMNS) - {"yaw"}
    assert rows[0]["metric"] == "detection_auc" and rows[0]["record"] == "k1"
    assert rows[0]["value"] == pytest.approx(dg.detection_roc([0.01, 0.02, 0.03], [0.05, 0.06, 0.01])[2])


def test_extend_report_adds_rows_sections_and_figures():
    sheet = {"inputs": image_sheet(torch.rand(3, 1, 28, 28)), "purified": image_sheet(torch.rand(3, 1, 28, 28))}
    records = [_record("k1"), _record("k0", attack="none", samples=sheet),
               _record("k2", threat="unrolled"), _record("k3", attack="none", params={"L": 20, "R": 2}),
               _record("k4", params={"L": 20, "R": 2}, label="L=20"),
               _record("k5", params={"L": 20, "R": 2, "z_init": "prior"}, label="L=20 prior")]
    report = Report(title="T", tidy=pd.DataFrame(columns=COLUMNS), table=pd.DataFrame(), texts={}, manifest={})
    dg.extend_report(report, records, {"notes": "profile notes"})
    assert list(report.tidy["metric"]) == ["detection_auc"] * 4
    text = report.texts["defensegan.md"]
    for needle in ("profile notes", "artifact", "generator trained 1000", "unrolled", "grad 0", "AUC"):
        assert needle in text
    assert {"detection_roc.png", "sample_sheet.png", "sweep.png"} <= set(report.figures)
    frame = dg.sweep_frame(records)  # the z_init = prior cell is not a point of the L / R curve
    assert list(frame["L"]) == [10, 20] and frame["fgsm"].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert frame["s_per_image"].tolist() == pytest.approx([1.0, 1.0])  # 6 s / (2 projections × 3 images)


def test_image_sheet_round_trip():
    x = torch.linspace(0, 1, 2 * 28 * 28).view(2, 1, 28, 28)
    back = torch.from_numpy(dg._decode(image_sheet(x)).copy()).float() / 255
    assert back.shape == x.shape and float((back - x).abs().max()) <= 0.5 / 255 + 1e-6
    assert not math.isnan(float(back.mean()))


def test_sample_sheet_shows_clean_then_oblivious_attack_projections():
    def sheet(n):
        return {"inputs": image_sheet(torch.rand(n, 1, 28, 28)), "purified": image_sheet(torch.rand(n, 1, 28, 28))}

    records = [_record("k0", attack="none", samples=sheet(16)), _record("k1", samples=sheet(8)),
               _record("k2", attack="cw", samples=sheet(8)), _record("k3", threat="bpda")]
    records[2]["config"]["eps"] = None
    fig = dg.sample_sheet(records, title="t")
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["test images", "Defense-GAN-Orig", "FGSM ε 0.3 inputs", "→ Defense-GAN-Orig", "CW inputs",
                      "→ Defense-GAN-Orig"]
    assert "then oblivious attacks" in fig._suptitle.get_text()
    assert dg.sample_sheet(records[1:], title="t") is None  # no clean projections: no sheet
