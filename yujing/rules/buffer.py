"""One series' retained readings: sorted, unique timestamps, in a growable buffer.

A live series gets a few readings at a time, each newer than the last: they are
appended in place (amortised O(new readings)), and trimming the old end only moves
an offset; when the end is reached the live part is moved to the front of a buffer
sized from it (a quarter of room beyond the live readings), so a series that keeps
1,500 readings holds about 1.25 x its readings, not two to four times, and a buffer shrinks
when its series does. So a worker's cost per reading does not grow with the window a
series keeps (each reading is copied about four times by these moves). A
reading older than the newest, or one repeating a timestamp (a replay: the last
to arrive wins), merges into this series alone.
"""

from __future__ import annotations

import numpy as np

MIN_CAPACITY = 16
HEADROOM = 4  # a moved buffer has room for a quarter of its live readings more


class Buffer:
    __slots__ = ("ts", "v", "lo", "hi")

    def __init__(self, ts: np.ndarray | None = None, v: np.ndarray | None = None) -> None:
        self.ts = np.empty(MIN_CAPACITY, np.int64) if ts is None else np.ascontiguousarray(ts, np.int64)
        self.v = np.empty(MIN_CAPACITY, np.float64) if v is None else np.ascontiguousarray(v, np.float64)
        self.lo, self.hi = 0, 0 if ts is None else int(self.ts.size)

    def __len__(self) -> int:
        return self.hi - self.lo

    def views(self) -> tuple[np.ndarray, np.ndarray]:
        """The retained (ts, v): views, valid until the next change."""
        return self.ts[self.lo:self.hi], self.v[self.lo:self.hi]

    def add(self, ts: np.ndarray, v: np.ndarray) -> None:
        """Readings sorted by time with unique timestamps (the chunk's own duplicates
        resolved already) into the series; a new reading wins over a stored one."""
        if self.hi > self.lo and ts[0] <= self.ts[self.hi - 1]:
            old_ts, old_v = self.views()
            all_ts = np.concatenate((old_ts, ts))
            all_v = np.concatenate((old_v, v))
            order = np.argsort(all_ts, kind="stable")  # stored first, so new ones come last
            all_ts, all_v = all_ts[order], all_v[order]
            last = np.ones(all_ts.size, dtype=bool)
            last[:-1] = all_ts[1:] != all_ts[:-1]
            self.ts, self.v = all_ts[last], all_v[last]
            self.lo, self.hi = 0, int(self.ts.size)
            return
        n = int(ts.size)
        if self.hi + n > self.ts.size:
            self._make_room(n)
        self.ts[self.hi:self.hi + n] = ts
        self.v[self.hi:self.hi + n] = v
        self.hi += n

    def _make_room(self, n: int) -> None:
        """Move the live part to the front of a buffer sized from the live readings plus
        ``n``, with a quarter of that as room (at least MIN_CAPACITY): it grows as a series
        fills and shrinks when the series keeps fewer readings. Sizing from the old size
        instead (double when over half full, else the same size) settled at about twice
        the live readings (bench/memory.py: 34.6 against 21.6 B per reading)."""
        live = self.hi - self.lo
        need = live + n
        size = need + max(MIN_CAPACITY, need // HEADROOM)
        ts, v = np.empty(size, np.int64), np.empty(size, np.float64)
        ts[:live] = self.ts[self.lo:self.hi]
        v[:live] = self.v[self.lo:self.hi]
        self.ts, self.v, self.lo, self.hi = ts, v, 0, live

    def trim(self, floor: int, keep: int) -> None:
        """Drop readings at or before ``floor``, but keep the newest ``keep`` readings
        (what an anomaly model looks back on) and always the newest one."""
        n = self.hi - self.lo
        if n == 0:
            return
        if self.ts[self.lo] > floor:  # the live case: nothing has aged out yet
            return
        cut = int(self.ts[self.lo:self.hi].searchsorted(floor, side="right"))
        if keep:
            cut = min(cut, n - keep)
        self.lo += min(max(cut, 0), n - 1)
