"""Defense-GAN factory (with a fake context) and the generator-quality measurements, on tiny nets."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.errors import BenchError
from bench.report import gan_quality
from defenses.base import DefenseContext
from defenses.defensegan import artifacts, quality
from defenses.defensegan.factory import build
from defenses.defensegan.nets import Generator
from defenses.defensegan.purifier import DefenseGANPurifier
from defenses.defensegan.wgan_gp import WGANConfig, train_wgan_gp


def _tiny_gen() -> Generator:
    torch.manual_seed(0)
    return Generator(latent_dim=8, dim=4).eval().requires_grad_(False)


def _classifier() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()


def _data(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "WEIGHTS_DIR", tmp_path)
    artifacts.save_artifact(_tiny_gen().state_dict(), {"iterations": 3, "config": {"latent_dim": 8, "dim": 4}},
                            dataset="mnist")
    calls = {}

    def train_classifier(*, transform, transform_key, train_images):
        calls["x"], calls["key"] = transform(_data(6)[0][:train_images]), transform_key
        return _classifier()

    return DefenseContext(dataset="mnist", model="A", classifier=_classifier(), device=torch.device("cpu"), seed=0,
                          profile={"rec_train_images": 2}, cache_dir=tmp_path, train_classifier=train_classifier,
                          load_split=lambda split: None), calls


def test_factory_orig_and_rec(ctx):
    context, calls = ctx
    parts = build(context, L=2, R=2)
    assert isinstance(parts.purifier, DefenseGANPurifier) and parts.classifier is context.classifier
    assert parts.notes["generator"]["iterations"] == 3 and parts.notes["purifier"]["L"] == 2
    assert parts.notes["generator"]["sha256"]
    rec = build(context, L=2, R=2, variant="rec")
    x = _data(6)[0]
    assert calls["x"].shape == (2, 1, 28, 28) and not torch.equal(calls["x"], x[:2])  # trained on reconstructions only
    assert isinstance(calls["key"], str) and rec.notes["rec_train_images"] == 2
    with pytest.raises(BenchError, match="variant"):
        build(context, variant="both")


def test_projection_accuracy_and_sheet():
    gen, clf = _tiny_gen(), _classifier()
    x, y = _data()
    out = quality.projection_accuracy(gen, clf, x, y, L=2, R=2)
    for k in ("acc_clean", "acc_fgsm", "acc_clean_projected", "acc_fgsm_projected"):
        assert 0.0 <= out[k] <= 1.0
    assert out["rec_mse_clean"] > 0
    assert quality.reconstruction_mse(gen, x, L=2, R=2) == pytest.approx(out["rec_mse_clean"])
    fig = quality.sample_sheet(gen, x, n_samples=4, L=2, R=2, title="tiny")
    assert len(fig.axes) == 4 + 2 * len(x)


def test_snapshot_curve(tmp_path):
    cfg = WGANConfig(iters=2, batch_size=4, critic_iters=1, latent_dim=8, dim=4, snapshot_at=(1, 2), snapshot_every=0)
    train_wgan_gp(_data(8)[0], config=cfg, out_dir=tmp_path, progress=False)
    x, y = _data(3)
    rows = quality.snapshot_curve(tmp_path, _classifier(), x, y, L=2, R=2)
    assert [r["iteration"] for r in rows] == [1, 2] and "acc_fgsm_projected" in rows[0]
    gen = {"sha256": "ab" * 32, "iterations": 2, "source": "artifact",
           "quality_curve": {"settings": {"n": 3, "eps": 0.3, "L": 2, "R": 2, "classifier": "A",
                                          "classifier_epochs": 1}, "rows": rows}}
    records = [{"notes": {"defense": {"generator": gen}}}]
    assert gan_quality.figure(records, title="t").axes
    text = "\n".join(gan_quality.markdown(records, str))
    assert "| 1 |" in text and "| 2 |" in text and "acc. projected FGSM" in text


def test_curve_measures_snapshots_and_the_shipped_generator(tmp_path, monkeypatch):
    import types

    from bench import data
    from bench.models import training
    from defenses.defensegan import curve

    cfg = WGANConfig(iters=2, batch_size=4, critic_iters=1, latent_dim=8, dim=4, snapshot_at=(1, 2), snapshot_every=0)
    train_wgan_gp(_data(8)[0], config=cfg, out_dir=tmp_path / "run", progress=False)
    monkeypatch.setattr(artifacts, "WEIGHTS_DIR", tmp_path)
    artifacts.save_artifact(_tiny_gen().state_dict(), {"iterations": 3, "config": {"latent_dim": 8, "dim": 4}},
                            dataset="mnist")
    x, y = _data(4)
    monkeypatch.setattr(training, "train_classifier", lambda *a, **k: _classifier())
    monkeypatch.setattr(data, "load", lambda name, split: types.SimpleNamespace(x=x, y=y, sha256="t"))
    out = curve.measure("mnist", tmp_path / "run", upto=3, n=4, L=2, R=2)
    assert [r["iteration"] for r in out["rows"]] == [1, 2, 3]  # snapshots, then the shipped generator
    assert out["settings"]["L"] == 2 and all("acc_fgsm_projected" in r for r in out["rows"])
    assert [r["iteration"] for r in curve.measure("mnist", tmp_path / "run", upto=1, n=4, L=2, R=2)["rows"]] == [1]
    first = {"settings": out["settings"], "rows": out["rows"][:1]}  # iteration 1 measured before
    again = curve.measure("mnist", tmp_path / "run", upto=3, previous=first, n=4, L=2, R=2)
    assert [r["iteration"] for r in again["rows"]] == [2, 3]  # only what is new is measured ...
    assert curve.merge(first, again)["rows"] == out["rows"]  # ... and the merged curve is the same
    other = {"settings": {**out["settings"], "L": 3}, "rows": out["rows"][:1]}
    assert len(curve.measure("mnist", tmp_path / "run", upto=3, previous=other, n=4, L=2, R=2)["rows"]) == 3


def test_curve_merge_keeps_rows_of_snapshots_no_longer_on_disk():
    from defenses.defensegan.curve import merge

    settings = {"n": 4, "L": 2}
    old = {"settings": settings, "rows": [{"iteration": 1, "v": "old"}, {"iteration": 2, "v": "old"}]}
    new = {"settings": settings, "rows": [{"iteration": 2, "v": "new"}, {"iteration": 3, "v": "new"}]}
    assert [(r["iteration"], r["v"]) for r in merge(old, new)["rows"]] == [(1, "old"), (2, "new"), (3, "new")]
    other = {"settings": {"n": 8, "L": 2}, "rows": new["rows"]}
    assert merge(old, other) is other and merge(None, new) is new  # other settings: not comparable rows
