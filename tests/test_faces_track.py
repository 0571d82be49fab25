"""The faces track end to end: smoke runs of the face specs through the runner, reports from records alone,
and the pieces (gallery head, probe split, settings checks, tidy rows) on tiny inputs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.errors import SpecError
from bench.faces.faceset import YAWS, FaceSet
from bench.faces.gallery import GalleryHead, pair_scores
from bench.report import build_report, write_report
from bench.runner import run
from bench.spec import load_spec
from bench.tracks import faces_setup
from bench.tracks.faces_report import summarize, tidy_rows
from bench.tracks.faces_settings import check_settings

CPU = torch.device("cpu")


FGSM_8 = 0.03137254901960784
# The fast runs: two models (the pixel floor and a 4-iteration DR-GAN) and three attacks.
TINY = {"faces-robustness-synth": {"models": ["pixels", "drgan"], "attacks": [
            {"key": "none"}, {"key": "fgsm", "eps": [FGSM_8]},
            {"key": "fgsm", "eps": [FGSM_8], "targeted": True}]}}


def _runs(root: Path, overrides: dict[str, dict]) -> dict[str, Path]:
    """Run the synthetic face experiments at the smoke profile in one temporary cache/data/results folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(root / "cache"))
        mp.setenv("BENCH_DATA", str(root / "data"))
        mp.setattr(faces_setup, "_MEMO", {})
        out = {}
        for key, over in overrides.items():
            summary = run(load_spec(key, profile="smoke", overrides=over), out=root / "results", device=CPU)
            assert summary.failed == 0
            out[key] = summary.store.root
        return out


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    return _runs(tmp_path_factory.mktemp("faces"), TINY)


@pytest.mark.slow
def test_full_smoke_profiles_run_and_reports_rebuild_byte_for_byte(tmp_path):
    """Both experiments as specified (4 models, every smoke attack): ~1-3 min on 2 busy cores."""
    roots = _runs(tmp_path / "runs", {"faces-pose-synth": {}, "faces-robustness-synth": {}})
    for key, root in roots.items():
        files = write_report(build_report(root), tmp_path / key / "a")
        again = write_report(build_report(root), tmp_path / key / "b")
        for a, b in zip(files, again):
            assert a.read_bytes() == b.read_bytes(), (key, a.name)
        names = {p.name for p in files}
        assert {"results.csv", "table.md", "table.tex", "table.csv", "verification.md", "rank1_by_yaw.md",
                "rank1_vs_yaw.png", "roc.png", "data_contact_sheet.png", "rotations_drgan.png",
                "rotations_crgan.png"} <= names
    assert {"robustness.md", "rank1_vs_yaw_attacked.png", "success_vs_eps.png"} <= {
        p.name for p in (tmp_path / "faces-robustness-synth" / "a").iterdir()}


def test_smoke_report_files_and_yaw_rows(smoke_runs, tmp_path):
    report = build_report(smoke_runs["faces-robustness-synth"])
    names = {p.name for p in write_report(report, tmp_path)}
    assert {"results.csv", "table.md", "table.tex", "table.csv", "verification.md", "robustness.md",
            "rank1_vs_yaw.png", "rank1_vs_yaw_attacked.png", "success_vs_eps.png", "roc.png",
            "data_contact_sheet.png", "rotations_drgan.png"} <= names
    tidy = report.tidy
    assert "yaw" in tidy.columns
    for model in ("pixels", "drgan"):
        mine = tidy[(tidy["model"] == model) & (tidy["attack"] == "none")]
        assert set(mine[mine["metric"] == "rank1"]["yaw"].dropna()) == set(range(0, 91, 15))
        assert set(mine[mine["metric"] == "rank1_signed_yaw"]["yaw"]) == set(YAWS)
        for metric in ("auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3"):
            assert len(mine[mine["metric"] == metric]) == 8          # 7 |yaw| groups + all
        attacked = tidy[(tidy["model"] == model) & (tidy["metric"] == "attack_success_rate")]
        assert set(attacked["threat"]) == {"dodging", "impersonation"}
        assert set(attacked["yaw"].dropna()) == {0, 30, 60, 90}      # settings.attack_yaws
    r1 = tidy[tidy["metric"] == "rank1"]
    assert ((r1["ci_low"] <= r1["value"]) & (r1["value"] <= r1["ci_high"])).all()
    assert "FGSM ε=8/255 impersonation" in report.texts["table.md"]


def test_smoke_attacks_respect_budget_and_never_raise_rank1(smoke_runs):
    from bench.store import Store

    records = list(Store(smoke_runs["faces-robustness-synth"]).records())
    clean = {r["config"]["model"]: r for r in records if r["config"]["attack"] == "none"}
    for r in records:
        rows, cfg = r["per_sample"], r["config"]
        if cfg["attack"] == "none":     # rank-1 hit <=> own gallery score beats every impostor (ties miss)
            assert r["metrics"]["verification"]["all"]["n_genuine"] == len(rows["hit"])
            assert rows["hit"] == [g > m for g, m in zip(rows["genuine"], rows["max_impostor"])]
            continue
        assert {abs(y) for y in rows["yaw"]} <= set(r["notes"]["attack_yaws"])
        if cfg["eps"] is not None:
            assert max(rows["linf"]) <= cfg["eps"] + 1e-6
        reference = clean[cfg["model"]]["per_sample"]
        same = dict(zip(reference["probe"], reference["hit"]))
        assert rows["clean_hit"] == [same[p] for p in rows["probe"]]   # same probes, same clean outcome
        if not cfg["targeted"]:
            assert r["metrics"]["rank1"] <= r["metrics"]["clean_rank1"] + 1e-12
        assert r["metrics"]["threshold"] == clean[cfg["model"]]["metrics"]["threshold"]


def _tiny_faceset(ids: int = 5, illums: int = 2, size: int = 8) -> FaceSet:
    s, y, i = torch.meshgrid(torch.arange(ids), torch.tensor(YAWS), torch.arange(illums), indexing="ij")
    x = torch.rand(s.numel(), 3, size, size, generator=torch.Generator().manual_seed(0))
    return FaceSet(x=x, subject=s.flatten(), yaw=y.flatten(), illum=i.flatten(), name="tiny", split="test",
                   sha256="0" * 64)


def test_gallery_head_argmax_is_nearest_gallery_and_split_is_clean():
    test = _tiny_faceset()
    gallery = faces_setup.gallery_index(test)
    assert gallery.tolist() == [int(((test.subject == s) & (test.yaw == 0) & (test.illum == 0)).nonzero()[0])
                                for s in range(5)]
    probes = faces_setup.probe_index(test, gallery, n=3, seed=1)
    assert not set(probes.tolist()) & set(gallery.tolist())
    assert torch.equal(probes, faces_setup.probe_index(test, gallery, n=3, seed=1))
    counts = torch.bincount((test.yaw[probes] + 90) // 15, minlength=13)
    assert counts.tolist() == [3] * 13
    features = torch.nn.Flatten()
    head = GalleryHead(features, test.x[gallery], test.subject[gallery], scale=7.0).eval()
    x = test.x[probes]
    nearest = pair_scores(features(x), features(test.x[gallery])).argmax(1)
    assert torch.equal(head(x).argmax(1), nearest)


def test_settings_errors_name_the_field():
    with pytest.raises(SpecError, match="settings: unknown key 'synt'"):
        check_settings({"synt": {}}, dataset="synth-faces")
    with pytest.raises(SpecError, match="settings.synth: unknown key 'ids'"):
        check_settings({"synth": {"ids": 3}}, dataset="synth-faces")
    with pytest.raises(SpecError, match="defenses: the faces track has no defenses"):
        check_settings({}, dataset="synth-faces", defenses=("defense-gan",))
    with pytest.raises(SpecError, match="settings.attack_yaws"):
        check_settings({"attack_yaws": [-15]}, dataset="synth-faces")
    with pytest.raises(SpecError, match="settings.face_models: unknown key 'dragn'"):
        check_settings({"face_models": {"dragn": {}}}, dataset="synth-faces", known_models=("drgan",))
    with pytest.raises(SpecError, match="settings.manifest.manifest"):
        check_settings({"manifest": {"size": 64}}, dataset="face-manifest")


@pytest.mark.parametrize("key", ["faces-pose-synth", "faces-robustness-synth", "faces-pose-multipie"])
@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_face_specs_validate(key, profile):
    spec = load_spec(key, profile=profile)
    assert spec.track == "faces" and spec.models == ("pixels", "softmax-cnn", "drgan", "crgan")


def test_attack_outcomes_follow_the_goal_definitions():
    rows = {"probe": [0, 1, 2, 3], "subject": [0, 1, 2, 3], "yaw": [0, 15, -15, 90], "illum": [1, 1, 1, 1],
            "clean_pred": [0, 1, 5, 3], "adv_pred": [4, 1, 5, 2], "clean_hit": [True, True, False, True],
            "adv_hit": [False, True, False, False], "target": [4, 2, 5, 2],
            "clean_genuine": [0.9, 0.8, 0.1, 0.7], "adv_genuine": [0.2, 0.8, 0.1, 0.3],
            "clean_target_score": [0.1, 0.2, 0.6, 0.1], "adv_target_score": [0.7, 0.2, 0.6, 0.6],
            "linf": [0.01] * 4, "l2": [1.0, 2.0, 3.0, 4.0]}
    dodge = summarize(rows, threshold=0.5, targeted=False)
    assert dodge["attack_success_rate"] == pytest.approx(2 / 3)      # probes 0 and 3 of the 3 hit clean
    assert dodge["accept_rate_at_clean_threshold"] == 0.25 and dodge["clean_accept_rate_at_clean_threshold"] == 0.75
    imp = summarize(rows, threshold=0.5, targeted=True)
    assert imp["attack_success_rate"] == pytest.approx(2 / 3)        # probe 2 already matched its target
    assert imp["accept_rate_at_clean_threshold"] == 0.75 and imp["l2_median_success"] == 2.5
    record = {"config": {"attack": "fgsm", "targeted": False}, "per_sample": rows, "metrics": {**dodge}}
    tidy = tidy_rows(record)
    asr = {r["yaw"]: r for r in tidy if r["metric"] == "attack_success_rate"}
    assert asr[None]["n"] == 3 and asr[90]["value"] == 1.0 and asr[15]["value"] == 0.0
    assert all(r["threat"] == "dodging" for r in tidy)


def test_manifest_spec_runs_on_a_tiny_manifest(tmp_path, monkeypatch, isolated_cache):
    """faces-pose-multipie on a fake Multi-PIE-style manifest (synthetic renders saved as PNG files)."""
    from PIL import Image

    from bench.faces.synth import load_synth

    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(faces_setup, "_MEMO", {})
    lines = ["path,subject_id,yaw_deg,illum,split"]
    for split in ("train", "test"):
        faces = load_synth(split, n_train_ids=4, n_test_ids=3, size=16, n_illums=2, progress=False)
        for i in range(len(faces)):
            path = Path("img") / f"{split}_{i:04d}.png"
            (tmp_path / path).parent.mkdir(exist_ok=True)
            Image.fromarray((faces.x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(tmp_path / path)
            illum = {0: 7, 1: 1}[int(faces.illum[i])]                # Multi-PIE's neutral flash is 07
            subject = 100 * (split == "test") + int(faces.subject[i])
            lines.append(f"{path},{subject},{int(faces.yaw[i])},{illum},{split}")
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    spec = load_spec("faces-pose-multipie", profile="smoke", overrides={
        "models": ["pixels", "drgan"], "n": 2,
        "settings": {"manifest": {"manifest": str(tmp_path / "manifest.csv"), "size": 16}}})
    summary = run(spec, out=tmp_path / "results", device=CPU)
    assert summary.failed == 0
    report = build_report(summary.store.root)
    tidy = report.tidy
    drgan15 = tidy[(tidy.model == "drgan") & (tidy.metric == "rank1") & (tidy.yaw == 15)].iloc[0]
    assert drgan15.paper_value == 0.94 and drgan15.paper_status == "recalled"
    signed = tidy[(tidy.model == "drgan") & (tidy.metric == "rank1_signed_yaw") & (tidy.yaw == 30)].iloc[0]
    assert signed.paper_status == "secondary"
    assert "tp-gan (paper)" in report.texts["table.md"] and "†" in report.texts["table.md"]
    assert math.isnan(drgan15.ci_low) is False


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_spec_model_configs_match_the_models_defaults(profile):
    """bases/faces.toml copies bench/faces/models/*.CONFIGS so records name what was trained; keep them in sync."""
    from bench.faces.models import profile_config

    spec = load_spec("faces-pose-synth", profile=profile)
    for model in spec.models:
        assert spec.settings["face_models"][model] == profile_config(model, profile), model
