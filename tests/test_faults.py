"""Long runs fail safely: killed drivers resume, dying workers retry, corrupt caches are recomputed, a full
disk loses no finished record."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.errors import BenchError
from bench.store import Store
from tests.conftest import needs_mnist
from tests.fault_plugin import fault_cell
from tests.test_executors import ray_session, stored  # noqa: F401  (the shared Ray fixture)
from tests.tiny_spec import write_tiny_spec

PLUGIN = str(Path(__file__).with_name("fault_plugin.py"))


class ListExecutor:
    """Yields ready-made results: the driver's side of a run without any model work."""

    def __init__(self, results):
        self.results = results

    def map(self, cells, device):
        yield from self.results

    def close(self):
        pass


def test_dying_worker_is_retried_and_a_cell_that_keeps_dying_is_reported(tmp_path, ray_session):
    from bench.executors.ray_executor import RayExecutor
    from bench.registry import load_plugin
    from bench.runner import run_cells

    load_plugin(PLUGIN)
    cells = [fault_cell(mode, tmp_path) for mode in ("ok", "die_once", "raise", "die_always")]
    store = Store(tmp_path / "res")
    summary = run_cells(cells, store=store, device="cpu",
                        executor=RayExecutor(threads=1, plugins=[PLUGIN], max_retries=1))
    assert (summary.computed, summary.failed) == (2, 2)
    assert {r["config"]["model"] for r in store.records()} == {"ok", "die_once"}
    errors = {r["config"]["model"]: r["error"] for r in store.failures()}
    assert errors["raise"] == "RuntimeError: boom"
    assert "WorkerCrashedError" in errors["die_always"] or "died" in errors["die_always"]


@needs_mnist
def test_failed_cell_is_listed_with_its_error_in_the_report(tmp_path, isolated_cache, monkeypatch):
    from bench.report import build_report
    from bench.runner import run
    from bench.spec import load_spec
    from bench.tracks import TRACKS, classifier

    def flaky(cell, device):
        if cell.attack == "rand-fgsm":
            raise RuntimeError("rand-fgsm exploded")
        return classifier.run_cell(cell, device)

    monkeypatch.setitem(sys.modules, "flaky_track", type(sys)("flaky_track"))
    sys.modules["flaky_track"].run_cell = flaky
    monkeypatch.setitem(TRACKS, "classifier", "flaky_track:run_cell")
    summary = run(load_spec(str(write_tiny_spec(tmp_path))), out=tmp_path / "res", device="cpu")
    assert (summary.computed, summary.failed) == (3, 1)
    manifest = build_report(summary.store.root).manifest
    assert [f["error"] for f in manifest["failed"]] == ["RuntimeError: rand-fgsm exploded"]
    assert manifest["n_records"] == 3


def test_full_disk_is_a_clear_error_and_keeps_finished_records(tmp_path, monkeypatch):
    from bench import store as store_module
    from bench.runner import run_cells

    cells = [fault_cell(f"m{i}", tmp_path) for i in range(3)]
    results = [(c, {"key": c.key, "status": "ok", "metrics": {"accuracy": 1.0}, "git": {}}, True) for c in cells]
    real, calls = store_module.atomic_write_text, []

    def filling_disk(path, text):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, text)

    monkeypatch.setattr(store_module, "atomic_write_text", filling_disk)
    store = Store(tmp_path / "res")
    with pytest.raises(BenchError, match="cannot write results to .*No space left on device"):
        run_cells(cells, store=store, device="cpu", executor=ListExecutor(results))
    monkeypatch.undo()
    assert [r["key"] for r in store.records()] == [cells[0].key]
    assert not [p for p in (tmp_path / "res").rglob("*") if p.name.startswith(".")]


def test_unwritable_results_folder_fails_before_any_work(tmp_path):
    from bench.runner import run
    from bench.spec import load_spec

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BenchError, match="--out: cannot write results to"):
        run(load_spec(str(write_tiny_spec(tmp_path))), out=blocker, device="cpu")


@needs_mnist
def test_corrupt_checkpoint_is_detected_and_retrained(isolated_cache, caplog, monkeypatch):
    from bench.models import training
    from bench.models.classifiers import build
    from bench.models.training import TrainConfig, train_classifier

    def train(arch="D"):
        monkeypatch.setattr(training, "_MEMO", {})
        return train_classifier(arch, "mnist", config=TrainConfig(epochs=1, train_images=300), seed=1,
                                device=torch.device("cpu"), factory=lambda **kw: build(arch, **kw))

    first = train()
    path, sidecar = first.bench_checkpoint, first.bench_checkpoint.with_suffix(".json")
    good, meta = path.read_bytes(), sidecar.read_text()
    path.write_bytes(good[: len(good) // 2])  # truncated checkpoint
    again = train()
    assert "does not match its recorded SHA-256" in caplog.text and path.read_bytes() == good
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    sidecar.write_text(meta[:10])  # truncated sidecar
    train()
    assert "sidecar" in caplog.text and json.loads(sidecar.read_text())["sha256"] == json.loads(meta)["sha256"]

    other = train("E").bench_checkpoint  # a verified checkpoint of another architecture under D's name
    path.write_bytes(other.read_bytes())
    sidecar.write_text(json.dumps({**json.loads(meta), "sha256": training.sha256_file(path)}))
    with pytest.raises(BenchError, match="does not fit architecture 'D'"):
        train()
    sidecar.write_text(json.dumps({**json.loads(meta), "sha256": training.sha256_file(path), "arch": "E"}))
    with pytest.raises(BenchError, match="made for architecture 'E', expected 'D'"):
        train()


def _kill_and_resume(cmd, out: Path, env: dict) -> Path:
    cells = out / "tiny" / "quick" / "cells"
    proc = subprocess.Popen([*cmd, "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and not list(cells.glob("*.json")) and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3 * (os.getpid() % 4))  # a moment that varies between runs
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run([*cmd, "--out", str(out)], env=env, check=True, capture_output=True)
    assert not [p for p in cells.parent.rglob("*") if p.name.startswith(".")]  # no partial files
    return cells.parent


@pytest.mark.slow
@needs_mnist
def test_killed_ray_run_resumes_to_identical_records(tmp_path, isolated_cache):
    pytest.importorskip("ray")
    env = {**os.environ, "BENCH_CACHE": str(isolated_cache), "BENCH_PROGRESS": "0"}
    spec = str(write_tiny_spec(tmp_path))
    base = [sys.executable, "-m", "bench", "-q", "run", spec, "--device", "cpu", "--threads", "1"]
    subprocess.run([*base, "--out", str(tmp_path / "full")], env=env, check=True, capture_output=True)
    resumed = _kill_and_resume([*base, "--executor", "ray", "--workers", "2"], tmp_path / "part", env)
    assert stored(resumed) == stored(tmp_path / "full" / "tiny" / "quick")
