"""Every user-facing input is checked: exit status 2 and one line naming the field, no traceback."""
import re

import pytest
import torch

from bench.cli import main
from bench.errors import BenchError, DataError
from bench.store import Store
from tests.tiny_spec import TINY_SPEC, write_tiny_spec

GOOD = "key='x'\ndataset='mnist'\nmodels=['A']\nn=5\n"


def cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("spec, pattern", [  # field, then the bad value
    (GOOD + "attacks=[{key='fgsn', eps=0.1}]", r"attacks\[0\]\.key: unknown attack 'fgsn'\. Did you mean 'fgsm'\?"),
    (GOOD + "attacks=[{key='fgsm', eps=1.5}]", r"attacks\[0\].*eps.*\[0, 1\].*1\.5"),
    (GOOD + "attacks=[{key='fgsm', eps=-0.1}]", r"attacks\[0\]\.eps.*-0\.1"),
    (GOOD + "attacks=[{key='rand-fgsm', eps=0.1, alpha=0.1}]", r"attacks\[0\].*alpha.*eps"),
    (GOOD + "atacks=[{key='fgsm', eps=0.1}]", r"spec: unknown key 'atacks'\. Did you mean 'attacks'\?"),
    (GOOD + "attacks=[{key='fgsm', eps=0.1}]\ntrain={epoch=1}", r"train: unknown key 'epoch'"),
    (GOOD.replace("models=['A']", "models=[]") + "attacks=[{key='none'}]", r"models: expected a non-empty list"),
    (GOOD.replace("n=5", "n=0") + "attacks=[{key='none'}]", r"\bn: expected an integer >= 1, got 0"),
    (GOOD + "attacks=[{key='none'}]\ntrain={train_images=0}", r"train\.train_images: expected an integer >= 1"),
    (GOOD.replace("'mnist'", "'mnits'") + "attacks=[{key='none'}]", r"dataset: unknown dataset 'mnits'"),
    (GOOD + "attacks=[{key='cw', preset='fastest'}]", r"cw.*unknown preset 'fastest'"),
])
def test_bad_spec_exits_2_naming_the_field(tmp_path, capsys, spec, pattern):
    path = write_tiny_spec(tmp_path, spec)
    for command in ("validate", "run"):
        code, err = cli(capsys, command, str(path), "--out", str(tmp_path / "res"))
        assert code == 2, err
        assert re.search(pattern, err) and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv, message", [
    (["--executor", "spark"], "--executor: unknown executor 'spark'"),
    (["--workers", "2"], "--workers: only used with --executor ray"),
    (["--executor", "ray", "--workers", "0"], "--workers: expected an integer >= 1, got 0"),
    (["--device", "tpu"], "--device: expected one of auto, cpu, cuda, got 'tpu'"),
    (["--profile", "huge"], "profile: unknown profile 'huge'"),
])
def test_bad_run_options_exit_2(tmp_path, capsys, argv, message):
    path = write_tiny_spec(tmp_path)
    code, err = cli(capsys, "run", str(path), "--out", str(tmp_path / "res"), *argv)
    assert code == 2 and message in err, err


def test_plugin_that_fails_to_import_exits_2(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('needs a library that is not installed')\n")
    code, err = cli(capsys, "--plugin", str(broken), "list", "attacks")
    assert code == 2 and "failed to import: ImportError: needs a library" in err
    code, err = cli(capsys, "--plugin", "no_such_module_xyz", "list", "attacks")
    assert code == 2 and "--plugin no_such_module_xyz: failed to import" in err


def test_records_of_another_code_version_are_refused_unless_allowed(tmp_path, capsys):
    from bench.spec import load_spec

    path = write_tiny_spec(tmp_path, TINY_SPEC)
    spec = load_spec(str(path))
    Store.for_experiment(tmp_path / "res", spec.key, spec.profile).write(
        {"key": "old", "status": "ok", "git": {"commit": "0123456789abcdef", "dirty": False}})
    code, err = cli(capsys, "validate", str(path), "--out", str(tmp_path / "res"))
    assert code == 2 and "--allow-mixed:" in err and "0123456789ab (1 records)" in err
    assert cli(capsys, "validate", str(path), "--out", str(tmp_path / "res"), "--allow-mixed")[0] == 0
    code, err = cli(capsys, "run", str(path), "--out", str(tmp_path / "res"), "--device", "cpu")
    assert code == 2 and "other code versions" in err


def test_model_output_must_be_n_by_classes():
    from bench.tracks.classifier import _defended_pass
    from defenses.base import DefenseParts, Identity

    x = torch.rand(4, 1, 28, 28)
    bad = DefenseParts(purifier=Identity(), classifier=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1),
                                                                          torch.nn.Flatten(0)))
    with pytest.raises(BenchError, match=r"model 'm': output shape \(4,\), expected \(4, num_classes\) logits"):
        _defended_pass(bad, x, who="model 'm'")


def test_inputs_outside_unit_range_are_an_error_with_advice():
    from bench.tracks.classifier import _defended_pass, check_unit_range
    from defenses.base import DefenseParts, Identity

    normalised = (torch.rand(2, 1, 28, 28) - 0.1307) / 0.3081
    with pytest.raises(DataError, match=r"outside \[0, 1\].*normalisation inside the model"):
        check_unit_range(normalised, who="dataset 'x' test images")
    check_unit_range(torch.ones(2, 1, 4, 4) + 1e-7, who="round-off is fine")

    class Shift(Identity):
        def forward(self, x):
            return x + 2

    parts = DefenseParts(purifier=Shift(), classifier=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)))
    with pytest.raises(DataError, match="purified images: values outside"):
        _defended_pass(parts, torch.rand(2, 1, 28, 28), who="model 'm'")


@pytest.mark.parametrize("module, argv, pattern", [
    ("artifacts", ["verify", "--dataset", "svhn"], r"artifact missing: .*svhn-wgan-gp\.pt"),
    ("train", ["--dataset", "mnist", "--warm-start", "shipped", "--iters", "10"], r"nothing to train"),
    ("train", ["--dataset", "mnist", "--critic-warmup", "5"], r"--critic-warmup: expected a count >= 0, with"),
])
def test_generator_tools_exit_2_without_a_traceback(module, argv, pattern):
    """The ``python -m defenses.defensegan.*`` tools report bad input as the bench CLI does."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", f"defenses.defensegan.{module}", *argv], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert re.search(pattern, done.stderr) and "Traceback" not in done.stderr, done.stderr
