"""Defense-GAN generator: architecture shapes, resumable WGAN-GP training, artifact save / load / verify."""
from __future__ import annotations

import json

import pytest
import torch

from bench.errors import BenchError
from defenses.defensegan import artifacts
from defenses.defensegan.nets import Critic, Generator
from defenses.defensegan.wgan_gp import WGANConfig, _lock, list_snapshots, train_wgan_gp

TINY = dict(batch_size=4, critic_iters=2, latent_dim=8, dim=4, checkpoint_every=1000, snapshot_at=(2,),
            snapshot_every=0)


def _images() -> torch.Tensor:
    return torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_architecture_shapes():
    g, d = Generator(), Critic()
    x = g(torch.randn(2, 128))
    assert x.shape == (2, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert d(x).shape == (2,)
    assert g.fc.out_features == 4096 and d.fc.in_features == 4096


def test_resume_is_exact(tmp_path):
    straight = train_wgan_gp(_images(), config=WGANConfig(iters=4, **TINY), out_dir=tmp_path / "a", progress=False)
    train_wgan_gp(_images(), config=WGANConfig(iters=2, **TINY), out_dir=tmp_path / "b", progress=False)
    resumed = train_wgan_gp(_images(), config=WGANConfig(iters=4, **TINY), out_dir=tmp_path / "b", progress=False)
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    assert sorted(list_snapshots(tmp_path / "b")) == [2, 4]
    # asking a longer run for an earlier iteration returns that snapshot instead of training
    early = train_wgan_gp(_images(), config=WGANConfig(iters=2, **TINY), out_dir=tmp_path / "b", progress=False)
    assert not torch.equal(early.fc.weight, resumed.fc.weight)
    with pytest.raises(BenchError, match="no snapshot"):
        train_wgan_gp(_images(), config=WGANConfig(iters=3, **TINY), out_dir=tmp_path / "b", progress=False)


def test_time_budget_checkpoints_and_resumes_on_the_same_trajectory(tmp_path):
    straight = train_wgan_gp(_images(), config=WGANConfig(iters=3, **TINY), out_dir=tmp_path / "a", progress=False)
    train_wgan_gp(_images(), config=WGANConfig(iters=3, **TINY), out_dir=tmp_path / "b", progress=False,
                  max_seconds=0.0)  # spent after the first iteration
    assert torch.load(tmp_path / "b" / "state.pt", weights_only=True)["iteration"] == 1
    resumed = train_wgan_gp(_images(), config=WGANConfig(iters=3, **TINY), out_dir=tmp_path / "b", progress=False)
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k


def test_training_folder_is_locked(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    held = _lock(tmp_path)
    try:
        with pytest.raises(BenchError, match="another process"):
            train_wgan_gp(_images(), config=WGANConfig(iters=1, **TINY), out_dir=tmp_path, progress=False)
    finally:
        held.close()


def test_artifact_roundtrip_and_sha_check(tmp_path):
    torch.manual_seed(0)
    g = Generator(latent_dim=8, dim=4)
    pt, js = artifacts.save_artifact(g.state_dict(), {"iterations": 7, "seed": 0, "config": {"latent_dim": 8,
                                     "dim": 4}}, dataset="mnist", weights_dir=tmp_path)
    loaded, prov = artifacts.load_artifact("mnist", tmp_path)
    assert prov["iterations"] == 7 and prov["sha256"] == json.loads(js.read_text())["sha256"]
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    z = torch.randn(3, 8)
    torch.testing.assert_close(loaded(z), g(z), atol=2e-3, rtol=0)  # fp16 storage
    pt.write_bytes(pt.read_bytes() + b"x")
    with pytest.raises(BenchError, match="mnist-wgan-gp.pt"):
        artifacts.verify_artifact("mnist", tmp_path)
    with pytest.raises(BenchError, match="missing"):
        artifacts.verify_artifact("fashion-mnist", tmp_path)


def test_export_from_run(tmp_path):
    train_wgan_gp(_images(), config=WGANConfig(iters=2, **TINY), out_dir=tmp_path / "run", progress=False)
    (tmp_path / "run" / "meta.json").write_text(json.dumps({"config": {"seed": 0, "latent_dim": 8, "dim": 4},
                                                            "command": "test"}))
    artifacts.export_from_run("mnist", tmp_path / "run", iteration=2, weights_dir=tmp_path / "w")
    _, prov = artifacts.load_artifact("mnist", tmp_path / "w")
    assert prov["iterations"] == 2 and prov["command"] == "test"
    with pytest.raises(BenchError, match="iteration 5"):
        artifacts.export_from_run("mnist", tmp_path / "run", iteration=5, weights_dir=tmp_path / "w")


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_shipped_generators_verify(dataset):
    """Every generator shipped in weights/ matches the SHA-256 of its provenance and states how it was made."""
    pt, _ = artifacts.artifact_paths(dataset)
    if not pt.exists():
        pytest.skip(f"no {dataset} generator shipped")
    gen, prov = artifacts.load_artifact(dataset)
    assert prov["iterations"] >= 1 and prov["seed"] == 0 and prov["command"] and prov["dataset_sha256"]
    assert gen(torch.zeros(2, gen.latent_dim)).shape == (2, 1, 28, 28)
    curve = prov.get("quality_curve")
    if curve:  # measured up to the shipped iteration
        assert curve["rows"][-1]["iteration"] == prov["iterations"]


def test_shipped_state_resumes_on_a_machine_without_cache(tmp_path, monkeypatch):
    """A run exported with its training state continues elsewhere exactly as the uninterrupted run does."""
    from defenses.defensegan import train

    monkeypatch.setattr(artifacts, "WEIGHTS_DIR", tmp_path / "weights")
    cfg = dict(TINY, snapshot_at=(2, 4))

    def run(cache: str, iters: int) -> Generator:
        monkeypatch.setenv("BENCH_CACHE", str(tmp_path / cache))
        return train.run("mnist", _images(), config=WGANConfig(iters=iters, **cfg), progress=False)[0]

    straight = run("straight", 4)
    run("first-machine", 2)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "first-machine"))
    key = train.gan_key(train.tensor_sha256(_images()), WGANConfig(**cfg))
    artifacts.export_from_run("mnist", train.run_dir("mnist", key), with_state=True)
    assert json.loads(artifacts.artifact_paths("mnist")[1].read_text())["state"]["iteration"] == 2
    resumed = run("second-machine", 4)
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    assert sorted(list_snapshots(train.run_dir("mnist", key))) == [2, 4]  # the shipped one became a snapshot
    artifacts.state_path("mnist").write_bytes(b"tampered")
    with pytest.raises(BenchError, match="SHA-256 mismatch"):
        run("third-machine", 4)
    # a run of another seed ignores the shipped state and trains from scratch
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "other-seed"))
    train.run("mnist", _images(), config=WGANConfig(iters=1, seed=5, **cfg), progress=False)


def test_bf16_precision_trains_and_keys_apart():
    from defenses.defensegan.train import gan_key

    assert WGANConfig().keyed() == {k: v for k, v in WGANConfig(precision="fp32").keyed().items()}
    assert "precision" not in WGANConfig().keyed()  # fp32 runs keep the keys they had before the option
    assert gan_key("d", WGANConfig()) != gan_key("d", WGANConfig(precision="bf16"))
    with pytest.raises(ValueError, match="precision"):
        WGANConfig(precision="fp8")


def test_warm_start_continues_the_shipped_generator(tmp_path, monkeypatch):
    """A continuing run starts at the shipped iteration from its weights, keys apart, resumes exactly, and
    its export carries the whole lineage (and the critic, so the next continuation needs no warm-up)."""
    from defenses.defensegan import lineage, train

    monkeypatch.setattr(artifacts, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg = dict(TINY, snapshot_at=(2, 4, 5))
    train.run("mnist", _images(), config=WGANConfig(iters=2, **cfg), progress=False, command="first")
    first = artifacts.find_run("mnist", WGANConfig(**cfg))
    artifacts.export_from_run("mnist", first, iteration=2)
    artifacts.critic_path("mnist").unlink()  # as shipped before critics were: the warm start trains one
    prov = json.loads(artifacts.artifact_paths("mnist")[1].read_text())
    del prov["critic"]
    artifacts.artifact_paths("mnist")[1].write_text(json.dumps(prov))

    warm = lineage.from_shipped("mnist", critic_warmup=3)
    assert warm.iteration == 2 and warm.critic is None
    config = WGANConfig(iters=4, precision="bf16", **cfg)
    _, out = train.run("mnist", _images(), config=config, progress=False, warm_start=warm, command="second")
    assert out != first and sorted(list_snapshots(out)) == [4]
    assert artifacts.find_run("mnist", WGANConfig(**cfg)) == out  # the newest run of the recipe
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["iteration"] == 4
    # the same call again finds the run finished; a longer one resumes without a second critic warm-up
    again, _ = train.run("mnist", _images(), config=config, progress=False, warm_start=warm, command="second")
    assert torch.equal(again.fc.weight, state["G"]["fc.weight"])

    artifacts.export_from_run("mnist", out)
    gen, prov = artifacts.load_artifact("mnist")
    assert prov["iterations"] == 4 and prov["critic"]["iteration"] == 4
    assert [(s["from"], s["to"], s["precision"], s["command"]) for s in prov["lineage"]] == [
        (0, 2, "fp32", "first"), (2, 4, "bf16", "second")]
    assert "fresh critic trained 3 steps alone" in prov["lineage"][1]["start"]
    lines = lineage.deviations(prov)
    assert any("2-4 continued from the shipped fp16 weights" in d for d in lines)
    assert any("2-4 trained under bf16" in d for d in lines)

    # the next continuation starts from the shipped critic
    nxt = lineage.from_shipped("mnist")
    assert nxt.critic is not None and nxt.parent["critic_warmup"] == 0
    _, out3 = train.run("mnist", _images(), config=WGANConfig(iters=5, **cfg), progress=False, warm_start=nxt)
    artifacts.export_from_run("mnist", out3)
    prov = artifacts.verify_artifact("mnist")
    assert [(s["from"], s["to"]) for s in prov["lineage"]] == [(0, 2), (2, 4), (4, 5)]
    assert prov["lineage"][2]["start"].startswith("shipped fp16 G and critic")
    artifacts.critic_path("mnist").write_bytes(b"tampered")
    with pytest.raises(BenchError, match="SHA-256 mismatch"):
        lineage.from_shipped("mnist")
    with pytest.raises(BenchError, match="nothing to train"):
        train.run("mnist", _images(), config=WGANConfig(iters=4, **cfg), progress=False, warm_start=nxt)
