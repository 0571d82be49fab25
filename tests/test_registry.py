"""The registry: lazy targets, did-you-mean, plugins by file and by entry point."""
import subprocess
import sys

import pytest

from bench.errors import BenchError
from bench.registry import Registry, UnknownNameError, load_plugin


def test_lazy_target_is_imported_on_first_use():
    reg = Registry("widgets")
    reg.register("path", "os.path:join")
    assert reg.names() == ["path"] and reg.target("path") == "os.path:join"
    import os.path
    assert reg.get("path") is os.path.join


def test_unknown_name_suggests_and_lists():
    reg = Registry("attacks")
    reg.register("fgsm", object())
    reg.register("cw", object())
    with pytest.raises(UnknownNameError, match=r"unknown attack 'fgms'. Did you mean 'fgsm'\? Valid choices: cw, fgsm"):
        reg.get("fgms")


def test_decorator_and_broken_target():
    reg = Registry("defenses")

    @reg.register("mine")
    def build():
        return 1

    assert reg.get("mine") is build
    reg.register("broken", "no_such_module_xyz:thing")
    with pytest.raises(BenchError, match="cannot import 'no_such_module_xyz:thing'"):
        reg.get("broken")


def test_plugin_file_registers_and_bad_plugin_is_clear(tmp_path):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text("from bench.registry import DEFENSES\nDEFENSES.register('from-plugin', 'defenses.median:build')\n")
    load_plugin(str(plugin))
    from bench.registry import DEFENSES
    assert "from-plugin" in DEFENSES.names()
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('nope')\n")
    with pytest.raises(BenchError, match="failed to import: RuntimeError: nope"):
        load_plugin(str(broken))
    with pytest.raises(BenchError, match="file not found"):
        load_plugin(str(tmp_path / "missing.py"))


def test_bench_list_imports_no_torch():
    code = "import sys; from bench.cli import main; main(['-q', 'list', 'attacks']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    dist = tmp_path / "bench_fake_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-fake-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bench.defenses]\nfake-median = defenses.median:build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("defenses")
    assert "fake-median" in reg.names() and reg.target("fake-median") == "defenses.median:build"
    from defenses.median import build
    assert reg.get("fake-median") is build
