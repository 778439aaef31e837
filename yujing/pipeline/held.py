"""Which warnings stand open at each station, and the last reading they rest on.

A gauge that falls silent during a flood must not fall back to a blue no-data
warning: the no-data check asks :meth:`OpenWarnings.context` which warning was
open when the station went quiet, and that warning's metric's last reading
(:class:`yujing.rules.nodata.Held`). Pure: events and envelope columns in, no
clock.

The answer is as of the silence's start, not as of the check, so a backtest that
finds a gap inside one large chunk (after the chunk's later events were applied)
grades it as the live worker's timer did: the events of the current chunk are
kept in a journal and replayed up to that time from the state before the chunk.
"""

from __future__ import annotations

import numpy as np

from yujing.domain import EventKind, Grade, WarningEvent
from yujing.envelope import Columns
from yujing.rules import nodata

Open = dict[str, tuple[int, str]]   # warning key → (grade, metric its rule reads)
NOT_YET = np.iinfo(np.int64).min


class LastReadings:
    """The newest reading of chosen (station, metric) series, in arrays: an envelope costs
    one pass per watched metric, with Python once per station of the envelope (not once
    per reading, nor per series updated)."""

    def __init__(self) -> None:
        self.slots: dict[str, dict[str, int]] = {}   # metric → station → slot
        self.ts = np.empty(0, np.int64)
        self.v = np.empty(0, np.float64)
        self._free: list[int] = []

    def watch(self, station: str, metric: str) -> None:
        by_station = self.slots.setdefault(metric, {})
        if station in by_station:
            return
        if not self._free:
            n = self.ts.size
            self.ts = np.concatenate((self.ts, np.full(max(n, 8), NOT_YET, np.int64)))
            self.v = np.concatenate((self.v, np.zeros(max(n, 8))))
            self._free = list(range(self.ts.size - 1, n - 1, -1))
        slot = by_station[station] = self._free.pop()
        self.ts[slot] = NOT_YET

    def unwatch(self, station: str, metric: str) -> None:
        slot = self.slots.get(metric, {}).pop(station, None)
        if slot is not None:
            self._free.append(slot)
            if not self.slots[metric]:
                del self.slots[metric]

    def get(self, station: str, metric: str) -> tuple[int, float] | None:
        slot = self.slots.get(metric, {}).get(station)
        if slot is None or self.ts[slot] == NOT_YET:
            return None
        return int(self.ts[slot]), float(self.v[slot])

    def put(self, station: str, metric: str, ts: int, v: float) -> None:
        self.watch(station, metric)
        slot = self.slots[metric][station]
        self.ts[slot], self.v[slot] = ts, v

    def update(self, cols: Columns) -> None:
        for metric, by_station in self.slots.items():
            if metric not in cols.metrics:
                continue
            sel = np.flatnonzero(cols.mi == cols.metrics.index(metric))
            to_slot = np.fromiter((by_station.get(s, -1) for s in cols.stations), np.int64,
                                  len(cols.stations))
            slot = to_slot[cols.si[sel]]
            hit = slot >= 0
            slot, t, v = slot[hit], cols.ts[sel][hit].astype(np.int64), cols.val[sel][hit]
            if not slot.size:
                continue
            order = np.lexsort((t, slot))
            slot, t, v = slot[order], t[order], v[order]
            last = np.append(slot[1:] != slot[:-1], True)   # the newest per slot
            slot, t, v = slot[last], t[last], v[last]
            newer = t >= self.ts[slot]                       # a late reading is not the last
            self.ts[slot[newer]], self.v[slot[newer]] = t[newer], v[newer]

    def items(self) -> dict[str, dict[str, list]]:
        """station → metric → [ts, value], of the series read so far."""
        out: dict[str, dict[str, list]] = {}
        for metric, by_station in self.slots.items():
            for station, slot in by_station.items():
                if self.ts[slot] != NOT_YET:
                    out.setdefault(station, {})[metric] = [int(self.ts[slot]), float(self.v[slot])]
        return out


class OpenWarnings:
    def __init__(self) -> None:
        self.open: dict[str, Open] = {}                       # station → its open warnings
        self.last = LastReadings()                            # of each open warning's metric
        self._before: dict[str, Open] = {}                    # this chunk: state before it
        self._journal: list[tuple[int, str, str, int, str]] = []  # (ts, station, key, grade, metric)
        self._cols: Columns | None = None

    # -- events -----------------------------------------------------------------------
    def begin(self, cols: Columns | None) -> None:
        """A new envelope or chunk: the journal of the previous one is dropped."""
        self._before, self._journal, self._cols = {}, [], cols

    def note(self, ev: WarningEvent) -> None:
        """Follow one event of the lifecycle (no-data and pending ones change nothing here)."""
        if ev.rule == nodata.RULE_ID or ev.kind == EventKind.PENDING:
            return
        here = self.open.setdefault(ev.station, {})
        if ev.station not in self._before:
            self._before[ev.station] = dict(here)
        had = {m for _g, m in here.values() if m}
        if ev.kind == EventKind.CLEARED:
            here.pop(ev.key, None)
            grade, metric = 0, ""
        else:
            metric = next((t.metric for t in ev.terms if t.metric), "")
            grade = int(ev.grade)
            here[ev.key] = (grade, metric)
        kept = {m for _g, m in here.values() if m}
        for m in had - kept:
            self.last.unwatch(ev.station, m)   # a reading no open warning rests on any more
        for m in kept:
            self.last.watch(ev.station, m)
        if not here:
            del self.open[ev.station]
        self._journal.append((ev.ts, ev.station, ev.key, grade, metric))

    def strongest(self, station: str, as_of: int | None = None) -> tuple[int, str] | None:
        """The highest open warning at ``station`` (ties: the first key), as of an event
        time of the current chunk or now."""
        here = dict(self.open.get(station, {}))
        if as_of is not None and station in self._before:
            here = dict(self._before[station])
            for ts, st, key, grade, metric in self._journal:
                if st != station or ts > as_of:
                    continue
                if grade:
                    here[key] = (grade, metric)
                else:
                    here.pop(key, None)
        if not here:
            return None
        return max((here[k] for k in sorted(here)), key=lambda gm: gm[0])

    # -- readings ---------------------------------------------------------------------
    def record(self, cols: Columns) -> None:
        """Keep the newest reading of each open warning's metric (only those: the common
        case, no warning open, costs one dictionary check)."""
        if self.open and len(cols):
            self.last.update(cols)

    def context(self, station: str, since: int) -> nodata.Held | None:
        """The warning open at ``station`` when it fell silent at ``since``, and its last
        reading then (from the current chunk, else from earlier ones)."""
        top = self.strongest(station, since)
        if top is None:
            return None
        grade, metric = top
        found = None
        if metric and self._cols is not None:
            found = _newest(self._cols, station, metric, since)
        if found is None and metric:
            found = self.last.get(station, metric)
        if found is None:
            return nodata.Held(Grade(grade), metric, None, 0)
        return nodata.Held(Grade(grade), metric, found[1], found[0])

    # -- durability -------------------------------------------------------------------
    def snapshot(self) -> dict:
        return {"open": {s: {k: list(v) for k, v in ws.items()} for s, ws in self.open.items()},
                "last": self.last.items()}

    def restore(self, snap: dict | None, active: dict) -> None:
        """Resume from :meth:`snapshot`; a checkpoint written before it (``snap`` None)
        rebuilds the grades from the lifecycle's open warnings, their metrics unknown."""
        if snap is None:
            self.open = {}
            for key, a in active.items():
                rule, _, station = key.partition("@")
                if rule != nodata.RULE_ID and not a.pending and a.grade > Grade.NONE:
                    self.open.setdefault(station, {})[key] = (int(a.grade), "")
            self.last = LastReadings()
            return
        self.open = {s: {k: (int(g), str(m)) for k, (g, m) in ws.items()}
                     for s, ws in snap["open"].items()}
        self.last = LastReadings()
        for station, ws in self.open.items():
            for _g, metric in ws.values():
                if metric:
                    self.last.watch(station, metric)
        for station, ms in snap["last"].items():
            for metric, (t, v) in ms.items():
                self.last.put(station, metric, int(t), float(v))


def _newest(cols: Columns, station: str, metric: str, upto: int | None) -> tuple[int, float] | None:
    """The newest reading of ``metric`` at ``station`` in ``cols`` (at or before ``upto``)."""
    try:
        k, m = cols.stations.index(station), cols.metrics.index(metric)
    except ValueError:
        return None
    hit = (cols.si == k) & (cols.mi == m)
    if upto is not None:
        hit &= cols.ts <= upto
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return None
    i = idx[np.argmax(cols.ts[idx])]
    return int(cols.ts[i]), float(cols.val[i])
