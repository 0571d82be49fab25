"""Face metrics against hand-computed cases."""
import math

import numpy as np
import pytest
import torch

from bench.errors import DataError
from bench.faces.metrics import (accept_rate_at_threshold, rank1, rank1_by_group, rank1_hits, threshold_at_far,
                                 verification)


def test_rank1_simple_and_torch_inputs():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.8], [0.5, 0.4, 0.1]])
    gallery = torch.tensor([0, 1, 2])
    probes = torch.tensor([0, 1, 1])
    assert rank1_hits(scores, probes, gallery).tolist() == [True, False, False]
    assert rank1(scores, probes, gallery) == pytest.approx(1 / 3)


def test_rank1_ties_are_errors_and_multiple_templates_count():
    gallery = np.array([0, 1, 1])
    scores = np.array([[0.5, 0.5, 0.1],    # tie between own and other identity -> error
                       [0.2, 0.1, 0.7],    # second template of identity 1 wins -> correct
                       [0.0, 0.0, 0.0]])   # constant features -> error, not 1/G
    assert rank1_hits(scores, np.array([0, 1, 0]), gallery).tolist() == [False, True, False]


def test_rank1_open_set_probe_is_an_error():
    with pytest.raises(DataError, match="not in the gallery"):
        rank1(np.zeros((1, 2)), np.array([5]), np.array([0, 1]))


def test_rank1_by_group_counts_and_ci():
    scores = np.eye(4)
    ids = np.arange(4)
    scores[3] = [1, 0, 0, 0.5]                       # probe 3 wrong
    out = rank1_by_group(scores, ids, ids, groups=np.array([15, 15, 30, 30]))
    assert list(out) == [15, 30]
    assert out[15]["rank1"] == 1.0 and out[30]["k"] == 1 and out[30]["n"] == 2
    assert 0 < out[30]["ci_low"] < 0.5 < out[30]["ci_high"] < 1


def test_verification_auc_and_eer_hand_computed():
    # genuine 0.9, 0.6; impostor 0.7, 0.2: AUC = 3/4 (3 of 4 gen>imp orderings); FPR = FNR = 0.5 at 0.7
    out = verification([0.9, 0.6, 0.7, 0.2], [True, True, False, False])
    assert out["auc"] == pytest.approx(0.75)
    assert out["eer"] == pytest.approx(0.5)
    assert (out["n_genuine"], out["n_impostor"]) == (2, 2)


def test_verification_eer_interpolates():
    # genuine 0.9, 0.8, 0.4; impostor 0.5, 0.1. ROC passes (FPR 0, FNR 1/3) then (0.5, 1/3): crossing at 1/3.
    out = verification([0.9, 0.8, 0.4, 0.5, 0.1], [1, 1, 1, 0, 0])
    assert out["eer"] == pytest.approx(1 / 3)
    assert out["auc"] == pytest.approx(5 / 6)


def test_tar_at_far_needs_enough_impostors():
    out = verification(np.r_[np.ones(10), np.zeros(50)], np.r_[np.ones(10, bool), np.zeros(50, bool)])
    assert math.isnan(out["tar_at_far_1e-2"]) and math.isnan(out["tar_at_far_1e-3"])
    assert "need >= 100" in out["notes"] and "need >= 1000" in out["notes"]


def test_tar_at_far_reads_largest_tpr_within_far():
    rng = np.random.default_rng(0)
    imp = rng.uniform(0, 1, 200)
    imp[:2] = [1.5, 1.6]                             # exactly 1 % of impostors above every genuine score
    gen = np.array([1.55, 1.2, 1.1, 0.5])
    out = verification(np.r_[gen, imp], np.r_[np.ones(4, bool), np.zeros(200, bool)])
    # FAR <= 0.01 allows two false accepts: threshold 1.5 accepts genuine 1.55 only... but a lower one
    # (just above max(uniform) < 1) accepts 1.55, 1.2, 1.1 with the same 2 false accepts.
    assert out["tar_at_far_1e-2"] == pytest.approx(0.75)
    assert out["notes"].startswith("tar_at_far_1e-3")


def test_threshold_at_far_and_accept_rate():
    imp = np.array([0.9, 0.8, 0.8, 0.1, 0.0])
    t = threshold_at_far(imp, 0.2)                   # one false accept allowed: just above 0.8
    assert 0.8 < t < 0.9 and accept_rate_at_threshold(imp, t) == pytest.approx(0.2)
    t = threshold_at_far(imp, 0.4)                   # two allowed, but the two 0.8s tie -> still 1
    assert accept_rate_at_threshold(imp, t) == pytest.approx(0.2)
    assert threshold_at_far(imp, 0.0) > 0.9
    assert threshold_at_far(imp, 1.0) == -math.inf
    with pytest.raises(ValueError, match="far"):
        threshold_at_far(imp, 1.5)


def test_verification_without_impostors_is_nan_with_reason():
    out = verification([0.5, 0.6], [True, True])
    assert math.isnan(out["auc"]) and "impostor" in out["notes"]
