"""Face models (bench/faces/models): tiny random FaceSets, a few iterations each, seconds in total."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from bench.errors import SpecError
from bench.faces.models import BUILTIN, profile_config
from bench.faces.models import training as tr
from bench.registry import import_target

TRAINABLE = ("drgan", "crgan", "softmax-cnn")
SIZE = 16   # 4 * 2^2: the smallest size with two stride-2 stages


@dataclass(frozen=True)
class TinySet:
    """Duck-typed FaceSet: 4 subjects × 13 yaws × 2 illuminations of random 16×16 images."""

    x: torch.Tensor
    subject: torch.Tensor
    yaw: torch.Tensor
    illum: torch.Tensor
    name: str = "tiny"
    split: str = "train"
    sha256: str = "0" * 64


def tiny_set(ids: int = 4, illums: int = 2, seed: int = 0) -> TinySet:
    g = torch.Generator().manual_seed(seed)
    s, y, i = torch.meshgrid(torch.arange(ids), torch.arange(-90, 91, 15), torch.arange(illums), indexing="ij")
    x = torch.rand(s.numel(), 3, SIZE, SIZE, generator=g)
    return TinySet(x, s.flatten(), y.flatten(), i.flatten(), sha256=hashlib.sha256(x.numpy().tobytes()).hexdigest())


def build(key: str, cache: Path, *, seed: int = 0, trainset=None, **overrides):
    config = {**profile_config(key, "smoke"), **overrides}
    return import_target(BUILTIN[key])(trainset or tiny_set(), config=config, cache_dir=cache, seed=seed,
                                       progress=False)


@pytest.mark.parametrize("key", sorted(BUILTIN))
def test_features_shape_frozen_and_range_contract(key, tmp_path):
    model = build(key, tmp_path)
    x = torch.rand(5, 3, SIZE, SIZE)
    f = model.features(x)
    assert f.ndim == 2 and f.shape[0] == 5 and torch.isfinite(f).all()
    assert not model.features.training
    assert all(not p.requires_grad for p in model.features.parameters())
    x.requires_grad_(True)     # attacks need input gradients through the frozen extractor
    model.features(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("key", TRAINABLE)
def test_deterministic_under_seed_and_cache_hit(key, tmp_path, monkeypatch):
    x = torch.rand(3, 3, SIZE, SIZE)
    first = build(key, tmp_path / "a", seed=1)
    again = build(key, tmp_path / "b", seed=1)      # separate cache: trains again
    other = build(key, tmp_path / "c", seed=2)
    assert first.info["trained"] and again.info["trained"]
    assert torch.equal(first.features(x), again.features(x))
    assert not torch.allclose(first.features(x), other.features(x))

    loads = []
    real_load = torch.load

    def spy(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    cached = build(key, tmp_path / "a", seed=1)
    assert cached.info["trained"] is False and loads == [True]
    assert torch.equal(first.features(x), cached.features(x))
    assert cached.info["iterations"] == first.info["iterations"]
    assert len(list((tmp_path / "a").glob("*.pt"))) == 1


def test_cache_key_depends_on_config_seed_and_data(tmp_path):
    args = dict(arch="a", trainset_sha="s", config={"iterations": 1}, seed=0)
    base = tr.checkpoint_path(tmp_path, "drgan", **args)
    assert base == tr.checkpoint_path(tmp_path, "drgan", **args)
    for change in ({"seed": 1}, {"trainset_sha": "t"}, {"config": {"iterations": 2}}, {"arch": "b"}):
        assert tr.checkpoint_path(tmp_path, "drgan", **{**args, **change}) != base


def test_drgan_generator_renders_each_pose(tmp_path):
    model = build("drgan", tmp_path)
    x = torch.rand(2, 3, SIZE, SIZE)
    for yaw in (-90, 0, 45):
        out = model.generator(x, yaw)
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    per_sample = model.generator(x, torch.tensor([-30, 60]))
    assert per_sample.shape == x.shape
    g = model.generator.g
    code = g.decode(model.features(x), tr.pose_index(torch.tensor([-90, 90])), torch.zeros(2, g.nz))
    assert code.shape == x.shape
    with pytest.raises(ValueError, match="yaw"):
        model.generator(x, 10)


def test_crgan_encoder_splits_view_and_identity(tmp_path):
    model = build("crgan", tmp_path, z_dim=7)
    x = torch.rand(3, 3, SIZE, SIZE)
    view, z = model.generator.encoder(x)
    assert view.shape == (3, tr.NUM_POSES) and z.shape == (3, 7)
    assert torch.equal(model.features(x), z)
    assert model.generator(x, 30).shape == x.shape


@pytest.mark.parametrize("same_illum", [True, False])
def test_crgan_partner_illumination_option_is_recorded(same_illum, tmp_path):
    model = build("crgan", tmp_path, partner_same_illum=same_illum)
    partner = [d for d in model.info["deviations"] if d.startswith("partner view")]
    assert len(partner) == 1 and ("any illumination" in partner[0]) is (not same_illum)
    assert model.info["config"]["partner_same_illum"] is same_illum


def test_pair_sampler_partners_share_subject_and_illum():
    ts = tiny_set(ids=3, illums=2)
    idx, partner = tr.PairSampler(ts.subject, ts.illum, generator=torch.Generator().manual_seed(0)).sample(200)
    assert torch.equal(ts.subject[idx], ts.subject[partner]) and torch.equal(ts.illum[idx], ts.illum[partner])
    assert (ts.yaw[idx] != ts.yaw[partner]).float().mean() > 0.8


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(SpecError, match="unknown key 'epochs'.*iterations"):
        build("drgan", tmp_path, epochs=3)
    with pytest.raises(SpecError, match="batch_size"):
        build("softmax-cnn", tmp_path, batch_size=0)
    with pytest.raises(SpecError, match="profile"):
        profile_config("drgan", "huge")


def test_pose_sheet_figure(tmp_path):
    from bench.faces.models.sheets import pose_sheet

    model = build("drgan", tmp_path)
    fig = pose_sheet(model, torch.rand(2, 3, SIZE, SIZE), input_yaws=[45, -60])
    assert len(fig.axes) == 2 * 14
    with pytest.raises(ValueError, match="no generator"):
        pose_sheet(build("pixels", tmp_path), torch.rand(1, 3, SIZE, SIZE))


@pytest.mark.slow
@pytest.mark.parametrize("key", TRAINABLE)
def test_features_beat_pixels_at_large_yaw_on_synth_faces(key, tmp_path):
    """A few minutes: a reduced quick run on a small synthetic set; |yaw| >= 45 rank-1 must beat pixels."""
    from bench.faces.gallery import pair_scores
    from bench.faces.metrics import rank1
    from bench.faces.synth import load_synth

    kw = dict(n_train_ids=40, n_test_ids=20, size=32, n_illums=2, root=tmp_path / "data", progress=False)
    train, test = load_synth("train", **kw), load_synth("test", **kw)
    gallery = (test.yaw == 0) & (test.illum == 0)
    probe = test.yaw.abs() >= 45

    def score(model):
        with torch.no_grad():
            s = pair_scores(model.features(test.x[probe]), model.features(test.x[gallery]))
        return rank1(s, test.subject[probe], test.subject[gallery])

    config = {**profile_config(key, "quick"), "iterations": 400, "width": 8}
    model = import_target(BUILTIN[key])(train, config=config, cache_dir=tmp_path / "ckpt", seed=0, progress=False)
    floor = score(build("pixels", tmp_path, trainset=train))
    assert score(model) > floor + 0.1


def test_pair_sampler_any_illumination_option():
    ts = tiny_set(ids=3, illums=2)
    sampler = tr.PairSampler(ts.subject, ts.illum, generator=torch.Generator().manual_seed(0), match_illum=False)
    idx, partner = sampler.sample(200)
    assert torch.equal(ts.subject[idx], ts.subject[partner])
    assert (ts.illum[idx] != ts.illum[partner]).any()
