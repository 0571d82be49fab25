"""The README's plug-in example goes from a file to rows in a table."""
import subprocess
import sys
from pathlib import Path

from tests.conftest import needs_mnist

ROOT = Path(__file__).resolve().parent.parent


@needs_mnist
def test_bitdepth_plugin_reaches_the_table(tmp_path, isolated_cache):
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--plugin", str(ROOT / "examples/bitdepth_plugin.py"), "run",
         str(ROOT / "examples/bitdepth.toml"), "--profile", "smoke", "--out", str(tmp_path), "--device", "cpu"],
        capture_output=True, text=True, env={**__import__("os").environ, "BENCH_CACHE": str(isolated_cache)})
    assert out.returncode == 0, out.stderr
    table = (tmp_path / "bitdepth-example" / "smoke" / "table.md").read_text()
    assert "| 1-bit | 1-bit (bpda) |" in table
    csv = (tmp_path / "bitdepth-example" / "smoke" / "results.csv").read_text()
    assert ",1-bit,fgsm,torchattacks,bpda," in csv and ",1-bit,fgsm,torchattacks,oblivious," in csv
