import os

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("BENCH_PROGRESS", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

# The CI machine has 2 cores shared with other work; tiny test tensors run faster on one thread.
torch.set_num_threads(1)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Trained artifacts go to a temporary cache (datasets still come from the real data cache)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    from bench.models import training
    monkeypatch.setattr(training, "_MEMO", {})
    return cache


def mnist_available() -> bool:
    try:
        from bench import data
        data.load("mnist", "test")
    except Exception:
        return False
    return True


needs_mnist = pytest.mark.skipif(not mnist_available(), reason="MNIST not in the data cache: run `bench data fetch mnist`")
