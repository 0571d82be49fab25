"""Executors: option checks, artifact grouping, and the same records from the local and the Ray executor."""
import json
import logging
import sys
from pathlib import Path

import pytest

from bench.cells import expand
from bench.errors import BenchError
from bench.executors import make_executor
from bench.executors.artifacts import artifacts_for
from bench.report import build_report, write_report
from bench.runner import run
from bench.spec import load_spec
from tests.conftest import needs_mnist
from tests.tiny_spec import TINY_SPEC, write_tiny_spec

VOLATILE = {"started", "wall_seconds", "checksum", "machine"}


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray (2 CPUs) shared by the tests of a module: starting Ray costs 10–20 s."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024 ** 2, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def stored(root: Path) -> dict[str, dict]:
    records = (json.loads(p.read_text()) for p in sorted((root / "cells").glob("*.json")))
    out = {}
    for r in records:
        r["notes"]["classifier"].pop("train_seconds", None)  # timing, like wall_seconds
        out[r["key"]] = {k: v for k, v in r.items() if k not in VOLATILE}
    return out


@pytest.mark.parametrize("name, options, match", [
    ("spark", {}, "--executor: unknown executor 'spark'; valid: local, ray"),
    ("local", {"address": "auto"}, "--address: only used with --executor ray"),
    ("local", {"workers": 2}, "--workers: only used with --executor ray"),
    ("ray", {"workers": 0}, "--workers: expected an integer >= 1, got 0"),
    ("local", {"threads": -1}, "--threads: expected an integer >= 1, got -1"),
    ("ray", {"workers": 2, "address": "auto"}, "--workers: only for a local Ray"),
])
def test_executor_options_are_checked(name, options, match):
    with pytest.raises(BenchError, match=match):
        make_executor(name, **options)


def test_ray_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BenchError, match=r'pip install "defense-bench\[ray\]"'):
        make_executor("ray")


def test_cells_share_one_classifier_artifact_per_model(tmp_path):
    spec = load_spec(str(write_tiny_spec(tmp_path, TINY_SPEC.replace('models = ["D"]', 'models = ["D", "E"]'))))
    keys = {}
    for cell in expand(spec):
        [artifact] = artifacts_for(cell)
        keys.setdefault(cell.model, set()).add(artifact.key)
    assert {m: len(k) for m, k in keys.items()} == {"D": 1, "E": 1} and keys["D"] != keys["E"]


@needs_mnist
def test_same_spec_gives_byte_identical_results_csv(tmp_path, monkeypatch):
    spec = load_spec(str(write_tiny_spec(tmp_path)))
    files = []
    for name in ("a", "b"):  # fresh caches: the classifier is retrained, the run must not depend on it
        monkeypatch.setenv("BENCH_CACHE", str(tmp_path / f"cache-{name}"))
        monkeypatch.setattr("bench.models.training._MEMO", {})
        summary = run(spec, out=tmp_path / name, device="cpu", executor=make_executor("local", threads=1))
        write_report(build_report(summary.store.root), tmp_path / f"report-{name}")
        files.append((tmp_path / f"report-{name}" / "results.csv").read_bytes())
    assert files[0] == files[1]


@needs_mnist
def test_ray_gives_the_records_of_the_local_executor(tmp_path, monkeypatch, ray_session, caplog):
    spec = load_spec(str(write_tiny_spec(tmp_path)))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache-local"))
    local = run(spec, out=tmp_path / "local", device="cpu", executor=make_executor("local", threads=1))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache-ray"))  # the classifier is trained again, in a task
    caplog.set_level(logging.INFO, logger="bench.executors.ray_executor")
    executor = make_executor("ray", threads=1)
    remote = run(spec, out=tmp_path / "ray", device="cpu", executor=executor)
    executor.close()  # Ray was started by the fixture: close leaves it running
    assert ray_session.is_initialized()
    assert "submitted 4 cells and 1 artifact builds" in caplog.text  # one training task for four cells
    assert (remote.computed, remote.failed) == (4, 0)
    assert stored(remote.store.root) == stored(local.store.root)
    assert list((tmp_path / "cache-ray" / "models").rglob("*.pt"))
    for root in (local.store.root, remote.store.root):
        write_report(build_report(root), root / "report")
    assert (remote.store.root / "report" / "results.csv").read_bytes() == \
        (local.store.root / "report" / "results.csv").read_bytes()
