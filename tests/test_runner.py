"""End to end on a tiny spec: records, resume after SIGKILL, cache hits, reports from records alone."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.device import resolve_device
from bench.report import build_report, write_report
from bench.runner import run
from bench.spec import load_spec
from bench.store import Store
from tests.conftest import needs_mnist
from tests.tiny_spec import write_tiny_spec

pytestmark = needs_mnist
VOLATILE = {"started", "wall_seconds", "checksum", "machine"}


def _records(root: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((root / "cells").glob("*.json")):
        record = json.loads(path.read_text())
        out[record["key"]] = {k: v for k, v in record.items() if k not in VOLATILE}
    return out


def test_run_report_and_cached_rerun(tmp_path, isolated_cache):
    spec = load_spec(str(write_tiny_spec(tmp_path)))
    first = run(spec, out=tmp_path / "res", device=resolve_device("cpu"))
    assert (first.total, first.computed, first.failed) == (4, 4, 0)
    root = first.store.root
    record = json.loads(next((root / "cells").glob("*.json")).read_text())
    for field in ("config", "seed", "versions", "git", "per_sample", "metrics"):
        assert field in record
    assert record["versions"]["torch"] and "commit" in record["git"]
    second = run(spec, out=tmp_path / "res", device=resolve_device("cpu"))
    assert (second.cached, second.computed) == (4, 0)

    report = build_report(root)
    files = write_report(report, tmp_path / "a")
    again = write_report(build_report(root), tmp_path / "b")
    for a, b in zip(files, again):
        assert a.read_bytes() == b.read_bytes(), a.name  # rebuilt from records alone, byte for byte
    names = {p.name for p in files}
    assert {"results.csv", "table.md", "table.tex", "table.csv", "manifest.json", "accuracy_bars.png"} <= names
    tidy = report.tidy
    fgsm = tidy[(tidy.attack == "fgsm") & (tidy.eps == 0.3) & (tidy.metric == "accuracy")].iloc[0]
    assert fgsm.paper_value == 0.04 and fgsm.paper_status == "recalled" and fgsm.ci_low <= fgsm.value <= fgsm.ci_high
    linf = tidy[(tidy.attack == "fgsm") & (tidy.eps == 0.1) & (tidy.metric == "linf_max")].iloc[0]
    assert 0 < linf.value <= 0.1 + 1e-6
    assert "†" in report.texts["table.md"]
    [recipe] = report.manifest["classifier_weights"]  # one classifier, one set of weights
    assert len(recipe["weights"]) == 1 and "Mixed weights" not in report.texts["table.md"]

    # the same recipe trained on another machine into other weights: the report names both
    path = next((root / "cells").glob("*.json"))
    record = json.loads(path.read_text())
    record["notes"]["classifier"]["sha256"] = "f" * 64
    Store(root).write(record)
    mixed = build_report(root)
    [recipe] = mixed.manifest["classifier_weights"]
    assert len(recipe["weights"]) == 2 and recipe["weights"]["f" * 64] == [record["key"]]
    assert "Mixed weights" in mixed.texts["table.md"] and "ffffffffff (1 cells)" in mixed.texts["table.md"]


def test_killed_run_resumes_to_identical_records(tmp_path, isolated_cache):
    spec_path = write_tiny_spec(tmp_path)
    env = {**os.environ, "BENCH_CACHE": str(isolated_cache), "BENCH_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "bench", "-q", "run", str(spec_path), "--device", "cpu"]
    subprocess.run([*cmd, "--out", str(tmp_path / "full")], env=env, check=True, capture_output=True)
    cells = tmp_path / "part" / "tiny" / "quick" / "cells"
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "part")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cells.glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list(cells.glob("*.json"))) < 4, "the run finished before it could be killed"
    subprocess.run([*cmd, "--out", str(tmp_path / "part")], env=env, check=True, capture_output=True)
    assert _records(cells.parent) == _records(tmp_path / "full" / "tiny" / "quick")
    assert not list(cells.glob("*.tmp")) and not list(cells.glob(".*"))


def test_cli_errors_exit_2_without_traceback(tmp_path):
    bad = write_tiny_spec(tmp_path, "key='x'\ndataset='mnist'\nmodels=['A']\nn=5\nattacks=[{key='fgsm', eps=2}]\n")
    out = subprocess.run([sys.executable, "-m", "bench", "run", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "attacks[0]: fgsm: eps must be in [0, 1], got eps=2" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "bench", "report", str(tmp_path / "missing")], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "no such folder" in out.stderr
    with pytest.raises(Exception):
        resolve_device("tpu")
