"""No-data (deadman) checks: a station that stops reporting is itself a warning.

Pure: the caller passes ``now_ms``. Stations come from the registry's
``expected_interval``; a station is offline when nothing arrived for
``factor`` × its interval, counted from its last reading or, for a station
that never reported, from the first event time this tracker saw (or, with no
data yet, from its first check).

Findings carry the event time at which the silence passed the limit (last
reading + limit) and, for the clear, the event time of the first reading
after it, never the time the check happened to run. Gaps between readings of
one envelope are found in ``observe`` and released by the next ``check``. So
the same readings give the same transitions however they were split into
envelopes and whenever the timer ran: the worker and the backtest agree.

Silence during an open warning carries that warning's weight: the caller's
``context(station, silent_since)`` says which warning stood open when the
station fell silent and its metric's last reading (:class:`Held`), and the
no-data finding takes that grade (at least blue) and names the reading. A
gauge the flood took at its peak pages like the flood warning, not in blue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import msgspec
import numpy as np

from yujing.domain import Finding, Grade, Term
from yujing.durations import format_duration

RULE_ID = "nodata"
DEFAULT_FACTOR = 3.0


class Held(NamedTuple):
    """The warning open at a station when it fell silent: its grade, the metric its rule
    reads, and that metric's last reading (value None when none is known)."""

    grade: Grade
    metric: str
    value: float | None
    value_ts: int


Context = Callable[[str, int], Held | None]   # (station, silent since) → the open warning


def _no_context(station: str, since: int) -> Held | None:
    return None


class NoDataTracker:
    def __init__(self, intervals_ms: dict[str, int], factor: float = DEFAULT_FACTOR) -> None:
        self.intervals_ms = intervals_ms
        self.factor = factor
        self.last_seen: dict[str, int] = {}
        self.offline: set[str] = set()
        self.watch_from: int | None = None
        self._found: list[Finding] = []  # gaps found inside observed data, for the next check

    def _limit(self, station: str) -> int:
        return int(self.intervals_ms[station] * self.factor)

    def observe(self, stations: list[str], si: np.ndarray, ts: np.ndarray,
                context: Context = _no_context) -> None:
        """Record each station's newest event time and find silences inside the data.

        Vectorised over readings; Python runs once per dictionary entry and per gap found.
        ``context`` is asked about each gap as of the reading before it.
        """
        if ts.size == 0:
            return
        if self.watch_from is None:
            self.watch_from = int(ts.min())
        start = self.watch_from
        limit = np.array([self._limit(s) if s in self.intervals_ms else 0 for s in stations],
                         dtype=np.int64)
        last = np.array([self.last_seen.get(s, start) for s in stations], dtype=np.int64)
        s = si.astype(np.intp)
        keep = (limit[s] > 0) & (ts > last[s])  # only readings newer than the station's last
        if not keep.any():
            return
        s, t = s[keep], ts[keep].astype(np.int64)
        order = np.lexsort((t, s))
        s, t = s[order], t[order]
        first = np.concatenate(([True], s[1:] != s[:-1]))
        prev = np.where(first, last[s], np.concatenate(([0], t[:-1])))
        gap = (t - prev) > limit[s]
        was_offline = np.array([st in self.offline for st in stations], dtype=bool)
        resumed = first & was_offline[s]
        for i in np.flatnonzero(gap | resumed).tolist():
            st = stations[int(s[i])]
            lim, interval = int(limit[s[i]]), self.intervals_ms[st]
            if not resumed[i]:
                what = "never reported" if st not in self.last_seen and first[i] else "no data"
                since = int(prev[i])
                held = context(st, since) if what == "no data" else None
                self._found.append(self._offline(st, since + lim, lim, interval, what, held))
            self.offline.discard(st)
            silent = int(t[i] - prev[i])
            self._found.append(Finding(RULE_ID, st, int(t[i]), Grade.NONE, True, silent / 60000,
                                       format_duration(lim),
                                       f"data arriving again after {silent // 60000} min",
                                       terms=[Term("data_back", "<", window_ms=lim,
                                                   value=silent / 60000)]))
        last_idx = np.flatnonzero(np.append(first[1:], True))  # newest reading per station
        for k, newest in zip(s[last_idx].tolist(), t[last_idx].tolist()):
            self.last_seen[stations[k]] = newest

    def _offline(self, st: str, at: int, limit: int, interval: int, what: str,
                 held: Held | None = None) -> Finding:
        if held is not None:
            return _held_offline(st, at, limit, interval, held)
        return Finding(RULE_ID, st, at, Grade.BLUE, False, limit / 60000, format_duration(limit),
                       f"{what} for more than {format_duration(limit)} (expected every "
                       f"{format_duration(interval)})",
                       terms=[Term("never_reported" if what == "never reported" else "no_data",
                                   ">", window_ms=limit, value=limit / 60000)])

    def snapshot(self) -> dict:
        return {"last_seen": dict(self.last_seen), "offline": sorted(self.offline),
                "watch_from": self.watch_from, "found": msgspec.to_builtins(self._found)}

    def restore(self, snap: dict) -> None:
        """Resume from :meth:`snapshot`; the expected intervals stay the registry's."""
        self.last_seen = {k: int(v) for k, v in snap["last_seen"].items()}
        self.offline = set(snap["offline"])
        self.watch_from = snap["watch_from"]
        self._found = msgspec.convert(snap["found"], list[Finding])

    def check(self, now_ms: int, owns=lambda station: True,
              context: Context = _no_context) -> list[Finding]:
        """Offline findings for stations silent at ``now_ms``, plus gaps found by ``observe``."""
        if self.watch_from is None:
            self.watch_from = now_ms
        out, self._found = self._found, []
        for st, interval in self.intervals_ms.items():
            if not owns(st) or st in self.offline:
                continue
            limit = int(interval * self.factor)
            since = self.last_seen.get(st, self.watch_from)
            if now_ms - since > limit:
                self.offline.add(st)
                what = "never reported" if st not in self.last_seen else "no data"
                held = context(st, since) if what == "no data" else None
                out.append(self._offline(st, since + limit, limit, interval, what, held))
        out.sort(key=lambda f: (f.ts, f.station))
        return out


def _held_offline(st: str, at: int, limit: int, interval: int, held: Held) -> Finding:
    """The no-data finding of a station silent during an open warning: at that grade, with
    the last reading named (``Term.at_ms`` is its time, or the silence's start)."""
    grade = max(Grade(held.grade), Grade.BLUE)
    since = at - limit
    last = "" if held.value is None else (
        f"; last {held.metric} reading {held.value:g} at {held.value_ts}")
    return Finding(RULE_ID, st, at, grade, False, limit / 60000, format_duration(limit),
                   f"no data for more than {format_duration(limit)} (expected every "
                   f"{format_duration(interval)}) during an open {grade.label} warning{last}",
                   terms=[Term("no_data", ">", metric=held.metric, window_ms=limit,
                               value=limit / 60000, raw=held.value,
                               at_ms=held.value_ts if held.value is not None else since)])
