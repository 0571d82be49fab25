"""Grid expansion: stable keys, order-independent seeds, 'none' rows."""
from bench.cells import expand
from bench.spec import load_spec
from tests.tiny_spec import write_tiny_spec


def test_expansion_counts_and_none_threat(tmp_path):
    cells = expand(load_spec(str(write_tiny_spec(tmp_path))))
    assert [(c.attack, c.eps) for c in cells] == [("none", None), ("fgsm", 0.1), ("fgsm", 0.3), ("rand-fgsm", 0.3)]
    assert {c.threat for c in cells} == {"none"}  # no defense: the threat setting does not apply
    assert len({c.key for c in cells}) == 4


def test_keys_and_seeds_do_not_depend_on_order(tmp_path):
    spec = load_spec(str(write_tiny_spec(tmp_path)))
    first = {c.label: (c.key, c.seed) for c in expand(spec)}
    text = (tmp_path / "tiny.toml").read_text().replace(
        '{ key = "none" },\n  { key = "fgsm", eps = [0.1, 0.3], backends = ["torchattacks"] },',
        '{ key = "fgsm", eps = [0.3, 0.1], backends = ["torchattacks"] },\n  { key = "none" },')
    reordered = {c.label: (c.key, c.seed) for c in expand(load_spec(str(write_tiny_spec(tmp_path, text))))}
    assert first == reordered


def test_defense_threats_expand():
    spec = load_spec("defensegan-whitebox-mnist")
    data = spec.as_dict()
    data["defenses"] = [{"key": "median", "threats": ["oblivious", "bpda"]}]
    from bench.spec import resolve
    cells = expand(resolve(data))
    attacked = [c for c in cells if c.attack != "none"]
    assert {c.threat for c in attacked} == {"oblivious", "bpda"}


def test_attack_threat_filter():
    from bench.spec import resolve
    data = load_spec("defensegan-whitebox-mnist").as_dict()
    data["defenses"] = [{"key": "none"}, {"key": "median", "threats": ["oblivious", "bpda"]}]
    data["attacks"] = [{"key": "fgsm", "eps": 0.3}, {"key": "pgd", "eps": 0.3, "threats": ["bpda"]}]
    data["models"] = ["A"]
    cells = expand(resolve(data))
    assert sorted((c.defense, c.attack, c.threat) for c in cells) == [
        ("median", "fgsm", "bpda"), ("median", "fgsm", "oblivious"), ("median", "pgd", "bpda"),
        ("none", "fgsm", "none"), ("none", "pgd", "none")]


def test_a_shipped_artifact_is_part_of_the_key(monkeypatch, tmp_path):
    """Defense-GAN cells are keyed by the shipped generator's SHA-256, so new weights never reuse a record
    computed with the old ones; cells of other defenses keep their keys."""
    import json

    from bench.cache import sha256_file
    from bench.runner import fingerprint_artifacts
    from bench.spec import resolve
    from defenses.defensegan import artifacts

    data = load_spec("defensegan-whitebox-mnist", profile="smoke").as_dict()
    data["models"] = ["A"]
    cells = expand(resolve(data))
    keyed = fingerprint_artifacts(cells)
    dg = [c for c in keyed if c.defense == "defense-gan"]
    others = [(a.key, b.key) for a, b in zip(cells, keyed) if a.defense != "defense-gan"]
    assert dg and all(c.artifacts == {"defense-gan generator": artifacts.verify_artifact("mnist")["sha256"]}
                      for c in dg if not c.defense_params.get("retrain"))
    assert others and all(a == b for a, b in others) and "artifacts" not in cells[0].config

    weights = tmp_path / "weights"
    weights.mkdir()
    for path in artifacts.artifact_paths("mnist"):
        (weights / path.name).write_bytes(path.read_bytes())
    pt, js = artifacts.artifact_paths("mnist", weights)
    pt.write_bytes(pt.read_bytes() + b"\0")  # "new weights", with provenance to match
    prov = json.loads(js.read_text())
    js.write_text(json.dumps({**prov, "sha256": sha256_file(pt)}))
    monkeypatch.setattr(artifacts, "WEIGHTS_DIR", weights)
    rekeyed = fingerprint_artifacts(cells)
    assert all((a.key != b.key) == (a.defense == "defense-gan") for a, b in zip(keyed, rekeyed))
