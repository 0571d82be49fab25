"""User-facing errors.

Anything raised as :class:`BenchError` is a problem with the user's input or environment (a bad spec,
missing data, a corrupt file). The CLI prints its one-line message and exits with status 2, no traceback.
Programming errors stay ordinary exceptions.
"""
from __future__ import annotations

import sys
from typing import Callable


class BenchError(Exception):
    """A user-facing error: the CLI prints ``str(err)`` and exits with status 2."""

    exit_code = 2


class SpecError(BenchError):
    """An experiment spec (or a CLI override of it) is invalid."""


class DataError(BenchError):
    """Data is missing, corrupt, or does not match its checksum."""


class ThreatModelError(BenchError):
    """An attack backend returned points outside the threat model (ε-ball or [0, 1])."""


def run_module(main: Callable[[], object], prog: str) -> None:
    """Run a ``python -m`` entry point as the ``bench`` CLI runs its commands: a :class:`BenchError` prints
    ``prog: error: message`` and exits with its status (2), without a traceback."""
    try:
        main()
    except BenchError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
