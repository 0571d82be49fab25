"""The committed reference run is rebuilt byte for byte from its stored records (README promise)."""
from pathlib import Path

import pytest

from bench.report import build_report, write_report

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"


@pytest.mark.parametrize("root", sorted(p.parent for p in REFERENCE.glob("*/*/spec.json")), ids=str)
def test_reference_report_regenerates_exactly(root, tmp_path):
    written = write_report(build_report(root), tmp_path)
    assert written
    for path in written:
        assert path.read_bytes() == (root / path.name).read_bytes(), path.name
