"""The record store: atomic writes, checksums, failed records."""
import json

import pytest

from bench.errors import BenchError
from bench.store import Store


def _record(key="k1", value=0.5):
    return {"key": key, "status": "ok", "metrics": {"accuracy": value}}


def test_write_read_round_trip(tmp_path):
    store = Store(tmp_path)
    store.write(_record())
    assert store.has("k1")
    [record] = list(store.records())
    assert record["metrics"] == {"accuracy": 0.5} and record["schema"] == 1
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary files left behind


def test_corrupt_and_truncated_records_are_detected(tmp_path, caplog):
    store = Store(tmp_path)
    path = store.write(_record())
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    assert not store.has("k1") and list(store.records()) == []
    path.write_text(text.replace("0.5", "0.9"))  # edited by hand: fails its checksum
    assert not store.has("k1")
    assert "fails its checksum" in caplog.text


def test_failed_record_is_separate_and_cleared_on_success(tmp_path):
    store = Store(tmp_path)
    store.write({"key": "k2", "status": "failed", "error": "boom"}, failed=True)
    assert not store.has("k2") and [r["error"] for r in store.failures()] == ["boom"]
    store.write(_record("k2"))
    assert store.has("k2") and list(store.failures()) == []


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BenchError, match="cannot write results to"):
        Store(blocker / "sub").write(_record())


def test_write_is_atomic_when_interrupted(tmp_path, monkeypatch):
    store = Store(tmp_path)
    store.write(_record(value=0.5))
    import os
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        store.write(_record(value=0.7))
    monkeypatch.undo()
    assert json.loads(store.path("k1").read_text())["metrics"]["accuracy"] == 0.5
    assert not list(tmp_path.rglob("*.tmp"))
