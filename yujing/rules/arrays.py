"""Small array helpers shared by the series store and the rule state.

``Grow`` is a numpy array indexed by station id that grows as stations appear.
The byte codecs turn arrays into plain little-endian ``bytes`` for snapshots
(worker checkpoints), so a checkpoint reads back the same on any machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NONE = np.iinfo(np.int64).min  # "no time": a station never evaluated, a run not started


class Grow:
    """A numpy array indexed by station id that grows as stations appear."""

    def __init__(self, fill: Any, dtype: Any) -> None:
        self.fill, self.dtype = fill, dtype
        self.a = np.full(64, fill, dtype=dtype)

    def ensure(self, n: int) -> np.ndarray:
        if n > self.a.size:
            size = max(n, self.a.size * 2)
            b = np.full(size, self.fill, dtype=self.dtype)
            b[: self.a.size] = self.a
            self.a = b
        return self.a


def seg_first(pst: np.ndarray) -> np.ndarray:
    """True at the first point of each station in points sorted by (station, time)."""
    first = np.ones(pst.size, dtype=bool)
    first[1:] = pst[1:] != pst[:-1]
    return first


def seg_last(pst: np.ndarray) -> np.ndarray:
    """True at the last point of each station in points sorted by (station, time)."""
    last = np.ones(pst.size, dtype=bool)
    last[:-1] = pst[1:] != pst[:-1]
    return last


def to_bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def from_bytes(raw: bytes, dtype: Any) -> np.ndarray:
    return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).astype(dtype)


def shuffle(a: np.ndarray) -> bytes:
    """Byte-transposed (all first bytes, then all second bytes, ...): like blosc's shuffle,
    it lets zlib see the slowly changing high bytes of timestamps and floats as runs."""
    raw = np.frombuffer(to_bytes(a), np.uint8)
    return raw.reshape(-1, a.dtype.itemsize).T.tobytes()


def unshuffle(raw: bytes, dtype: Any) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    b = np.frombuffer(raw, np.uint8).reshape(size, -1).T
    return from_bytes(np.ascontiguousarray(b).tobytes(), dtype)


def truth(a: np.ndarray) -> np.ndarray:
    """Booleans stay; numbers are true when non-zero and not NaN."""
    if a.dtype == bool:
        return a
    return np.nan_to_num(a, nan=0.0) != 0
