"""Progress bars: tqdm on a terminal or when forced, silent otherwise (CI logs stay readable)."""
from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm


def progress(**kwargs: Any) -> tqdm:
    """A tqdm bar; disabled when stderr is not a terminal unless ``BENCH_PROGRESS=1``."""
    forced = os.environ.get("BENCH_PROGRESS")
    disable = (forced == "0") if forced is not None else not sys.stderr.isatty()
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(disable=disable, **kwargs)
