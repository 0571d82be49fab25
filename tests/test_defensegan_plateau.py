"""Training until Defense-GAN's oblivious FGSM accuracy levels off: the rule, the watch, the stop in the loop."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from defenses.defensegan.plateau import PlateauRule, QualityWatch, plateaued
from defenses.defensegan.wgan_gp import WGANConfig, list_snapshots, train_wgan_gp

TINY = dict(batch_size=4, critic_iters=2, latent_dim=8, dim=4, checkpoint_every=1000, snapshot_at=(),
            snapshot_every=2)


def _images() -> torch.Tensor:
    return torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("values", "expected"), [
    ([], False),
    ([0.2, 0.3, 0.4], False),              # not more than `patience` measurements yet
    ([0.2, 0.3, 0.4, 0.5], False),         # still rising
    ([0.5, 0.51, 0.50, 0.515], True),      # best recent 0.515 < 0.5 + 0.02
    ([0.5, 0.4, 0.45, 0.52], False),       # a gain of exactly 0.02 counts
    ([0.6, 0.3, 0.3, 0.3, 0.3], True),     # a fall is not a gain
])
def test_plateau_rule(values, expected):
    assert plateaued(values, PlateauRule(patience=3, min_delta=0.02)) is expected


@pytest.mark.parametrize("kw", [{"patience": 0}, {"min_delta": -0.1}, {"warmup": -1}])
def test_plateau_rule_rejects_bad_settings(kw):
    with pytest.raises(ValueError, match="expected"):
        PlateauRule(**kw)


class _Watch:
    """Stops at the third snapshot; records what it saw."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, iteration: int, generator: nn.Module) -> bool:
        self.seen.append(iteration)
        return len(self.seen) == 3


def test_training_stops_at_the_snapshot_the_watch_names_and_keeps_the_trajectory(tmp_path):
    watch = _Watch()
    stopped = train_wgan_gp(_images(), config=WGANConfig(iters=20, **TINY), out_dir=tmp_path / "w", progress=False,
                            on_snapshot=watch)
    assert watch.seen == [2, 4, 6]
    state = torch.load(tmp_path / "w" / "state.pt", weights_only=True)
    assert state["iteration"] == 6 and sorted(list_snapshots(tmp_path / "w")) == [2, 4, 6]
    plain = train_wgan_gp(_images(), config=WGANConfig(iters=6, **TINY), out_dir=tmp_path / "p", progress=False)
    for (k, a), (_, b) in zip(plain.state_dict().items(), stopped.state_dict().items()):
        assert torch.equal(a, b), k


def test_a_real_quality_watch_leaves_the_trajectory_alone(tmp_path):
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    settings = {"n": 4, "eps": 0.3, "L": 2, "R": 2, "seed": 0}
    watch = QualityWatch(tmp_path / "w", clf, _images()[:4], torch.arange(4), settings=settings,
                         rule=PlateauRule(patience=1, min_delta=1.0, warmup=0))
    (tmp_path / "w").mkdir()
    watched = train_wgan_gp(_images(), config=WGANConfig(iters=4, **TINY), out_dir=tmp_path / "w", progress=False,
                            on_snapshot=watch)
    plain = train_wgan_gp(_images(), config=WGANConfig(iters=4, **TINY), out_dir=tmp_path / "p", progress=False)
    assert [row["iteration"] for row in watch.rows()] == [2, 4]
    for (k, a), (_, b) in zip(plain.state_dict().items(), watched.state_dict().items()):
        assert torch.equal(a, b), k


def test_quality_watch_measures_logs_and_decides(tmp_path):
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    x, y = _images()[:6], torch.arange(6) % 10
    settings = {"n": 6, "eps": 0.3, "L": 2, "R": 2, "seed": 0}
    watch = QualityWatch(tmp_path, clf, x, y, settings=settings, rule=PlateauRule(patience=1, min_delta=1.0, warmup=0))
    from defenses.defensegan.nets import Generator
    gen = Generator(latent_dim=8, dim=4).train()
    assert watch(100, gen) is False              # one measurement: nothing to compare with
    assert gen.training and all(p.requires_grad for p in gen.parameters())
    assert watch(200, gen) is True               # no gain of 1.0 is possible
    rows = [json.loads(line) for line in (tmp_path / "quality.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [100, 200] and rows[0]["settings"] == settings
    assert 0 <= rows[0]["acc_fgsm_projected"] <= 1 and rows[0]["rec_mse_clean"] > 0
    other = QualityWatch(tmp_path, clf, x, y, settings={**settings, "L": 3}, rule=PlateauRule(patience=1))
    assert other.rows() == [] and not other.done()   # rows of other settings are not used
    late = QualityWatch(tmp_path, clf, x, y, settings=settings, rule=PlateauRule(patience=1, min_delta=1.0,
                                                                                  warmup=150))
    assert len(late.rows()) == 2 and not late.done()  # only the row at 200 counts after the warm-up


def test_warmup_keeps_the_measured_mnist_curve_training():
    """The MNIST curve measured for the shipped generator (iterations 250 … 4000): not a plateau yet."""
    rows = [(250, 0.44), (500, 0.245), (1000, 0.225), (2000, 0.31), (3000, 0.395), (4000, 0.405)]
    rule = PlateauRule()
    assert plateaued([a for _, a in rows], rule)                              # what no warm-up would do
    assert not plateaued([a for it, a in rows if it >= rule.warmup], rule)
