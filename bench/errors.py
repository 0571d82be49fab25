"""User-facing errors.

Anything raised as :class:`BenchError` is a problem with the user's input or environment (a bad spec,
missing data, a corrupt file). The CLI prints its one-line message and exits with status 2, no traceback.
Programming errors stay ordinary exceptions.
"""
from __future__ import annotations


class BenchError(Exception):
    """A user-facing error: the CLI prints ``str(err)`` and exits with status 2."""

    exit_code = 2


class SpecError(BenchError):
    """An experiment spec (or a CLI override of it) is invalid."""


class DataError(BenchError):
    """Data is missing, corrupt, or does not match its checksum."""


class ThreatModelError(BenchError):
    """An attack backend returned points outside the threat model (ε-ball or [0, 1])."""
