"""Read and write IDX files, the format of the official MNIST and Fashion-MNIST distributions.

An IDX file is a big-endian header ``0x00 0x00 <type code> <ndim>``, then ``ndim`` uint32 sizes, then the
array in C order. Files may be gzip-compressed; that is detected from the content, not the file name.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from bench.errors import DataError

# type code -> big-endian dtype, as in the format description on the MNIST page.
_DTYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES: dict[str, int] = {np.dtype(v).str.lstrip("<>|"): k for k, v in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, *, origin: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into an array of its shape, native byte order."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{origin}: not an IDX file (bad magic number {data[:4].hex()!r})")
    dtype = np.dtype(_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{origin}: truncated IDX header")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{origin}: IDX size mismatch: header says shape {shape} ({expected} bytes), "
                        f"file has {len(data)} bytes")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read IDX file: {err}") from err
    return parse_idx(raw, origin=str(path))


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compress: bool = False) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``compress``); used to build test fixtures."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.str.lstrip("<>|"))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; valid: {sorted(_CODES)}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(_DTYPES[code], copy=False).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return path
