"""Spec loading and validation: every error names the field, the bad value and the choices."""
import pytest

from bench.errors import SpecError
from bench.spec import load_spec, resolve
from tests.tiny_spec import TINY_SPEC, write_tiny_spec

BASE = {"key": "t", "dataset": "mnist", "models": ["A"], "n": 10, "attacks": [{"key": "fgsm", "eps": 0.3}]}


def test_builtin_experiments_validate_for_every_profile():
    for profile in ("smoke", "quick", "paper"):
        spec = load_spec("defensegan-whitebox-mnist", profile=profile)
        assert spec.models == ("A", "B", "C", "D")
        assert spec.profile == profile
    assert load_spec("defensegan-whitebox-mnist", profile="paper").n == 10000


def test_profile_overrides_and_base_inheritance():
    spec = load_spec("defensegan-whitebox-fmnist", profile="smoke")
    assert spec.dataset == "fashion-mnist"
    assert spec.train["epochs"] == 1 and spec.train["batch_size"] == 50  # profile merged over the base table


@pytest.mark.parametrize("change, message", [
    ({"attacks": [{"key": "fgms"}]}, r"attacks\[0\]\.key: unknown attack 'fgms'\. Did you mean 'fgsm'\?"),
    ({"attacks": [{"key": "fgsm", "eps": 1.5}]}, r"attacks\[0\]: fgsm: eps must be in \[0, 1\], got eps=1\.5"),
    ({"attacks": [{"key": "fgsm", "eps": -0.1}]}, r"attacks\[0\]\.eps: expected a number >= 0, got -0\.1"),
    ({"attacks": [{"key": "rand-fgsm", "eps": 0.3, "alpha": 0.3}]}, r"attacks\[0\]: rand-fgsm: alpha must be"),
    ({"attacks": [{"key": "fgsm", "eps": 0.3, "backend": "cleverhans"}]}, r"fgsm: unknown backend 'cleverhans'"),
    ({"attacks": [{"key": "cw", "preset": "fastest"}]}, r"attacks\[0\]: cw: unknown preset"),
    ({"dataset": "mnits"}, r"dataset: unknown dataset 'mnits'\. Did you mean 'mnist'\?"),
    ({"models": ["Z"]}, r"models: unknown model 'Z'.*Valid choices: A, B"),
    ({"n": 0}, r"n: expected an integer >= 1, got 0"),
    ({"epsilon": 0.3}, r"spec: unknown key 'epsilon'"),
    ({"threats": ["whitebox"]}, r"threats: expected one of oblivious, unrolled, bpda, got 'whitebox'"),
    ({"label_mode": "guess"}, r"label_mode: expected one of true, predicted"),
    ({"train": {"epoch": 2}}, r"train: unknown key 'epoch'\. Did you mean 'epochs'\?"),
    ({"defenses": [{"key": "defense-gun"}]}, r"defenses\[0\]\.key: unknown defense"),
    ({"models": []}, r"models: expected a non-empty list"),
])
def test_validation_errors_name_the_field(change, message):
    with pytest.raises(SpecError, match=message):
        resolve({**BASE, **change})


def test_unknown_profile_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="profile: unknown profile 'fast'; valid: smoke, quick, paper"):
        resolve(BASE, profile="fast")
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(str(tmp_path / "nope.toml"))
    with pytest.raises(SpecError, match="unknown experiment 'defensegan-whitebox-mnst'. Did you mean"):
        load_spec("defensegan-whitebox-mnst")


def test_bad_toml_is_a_spec_error(tmp_path):
    path = write_tiny_spec(tmp_path, "key = [unclosed")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(str(path))


def test_spec_file_round_trip(tmp_path):
    spec = load_spec(str(write_tiny_spec(tmp_path)), profile="smoke")
    assert spec.key == "tiny" and spec.n == 24 and spec.attacks[1]["eps"] == [0.1, 0.3]
    assert spec.as_dict()["profile"] == "smoke"
    assert TINY_SPEC  # the text is the single source of the tiny experiment
