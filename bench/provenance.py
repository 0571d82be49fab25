"""What produced a record: library versions, git commit, machine."""
from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

_PACKAGES = ("torch", "torchattacks", "foolbox", "numpy", "pandas", "scikit-learn", "matplotlib")
_REPO = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    from bench import __version__
    versions["defense-bench"] = __version__
    return versions


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=_REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_state() -> dict[str, object]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout the code runs from."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine() -> dict[str, str]:
    return {"platform": platform.platform(), "processor": platform.machine(), "python_executable": sys.executable}
