"""No-data (deadman) checks: a station that stops reporting is itself a warning.

Pure: the caller passes ``now_ms``. Stations come from the registry's
``expected_interval``; a station is offline when nothing arrived for
``factor`` × its interval, counted from its last reading or, for a station
that never reported, from when this tracker started watching.
"""

from __future__ import annotations

import numpy as np

from ..domain import Finding, Grade
from ..durations import format_duration

RULE_ID = "nodata"
DEFAULT_FACTOR = 3.0


class NoDataTracker:
    def __init__(self, intervals_ms: dict[str, int], factor: float = DEFAULT_FACTOR) -> None:
        self.intervals_ms = intervals_ms
        self.factor = factor
        self.last_seen: dict[str, int] = {}
        self.offline: set[str] = set()
        self.watch_from: int | None = None

    def observe(self, stations: list[str], si: np.ndarray, ts: np.ndarray) -> None:
        """Record the newest event time per station of one envelope (vectorised)."""
        if ts.size == 0:
            return
        newest = np.full(len(stations), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(newest, si.astype(np.intp), ts)
        for i in np.flatnonzero(newest > np.iinfo(np.int64).min).tolist():
            st = stations[i]
            if st in self.intervals_ms and newest[i] > self.last_seen.get(st, -1):
                self.last_seen[st] = int(newest[i])

    def check(self, now_ms: int, owns=lambda station: True) -> list[Finding]:  # noqa: ANN001
        """Offline findings for silent stations and clears for those heard again."""
        if self.watch_from is None:
            self.watch_from = now_ms
        out = []
        for st, interval in self.intervals_ms.items():
            if not owns(st):
                continue
            limit = int(interval * self.factor)
            since = self.last_seen.get(st, self.watch_from)
            silent = now_ms - since
            if silent > limit and st not in self.offline:
                self.offline.add(st)
                what = "never reported" if st not in self.last_seen else "no data"
                out.append(Finding(RULE_ID, st, now_ms, Grade.BLUE, False, silent / 60000,
                                   format_duration(limit),
                                   f"{what} for {silent // 60000} min (expected every "
                                   f"{format_duration(interval)})"))
            elif silent <= limit and st in self.offline:
                self.offline.discard(st)
                out.append(Finding(RULE_ID, st, now_ms, Grade.NONE, True, silent / 60000,
                                   format_duration(limit), "data arriving again"))
        return out
