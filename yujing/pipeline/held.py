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


class OpenWarnings:
    def __init__(self) -> None:
        self.open: dict[str, Open] = {}                       # station → its open warnings
        self.last: dict[str, tuple[int, float]] = {}         # "station|metric" → (ts, value)
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
        if ev.kind == EventKind.CLEARED:
            here.pop(ev.key, None)
            grade, metric = 0, ""
        else:
            metric = next((t.metric for t in ev.terms if t.metric), "")
            grade = int(ev.grade)
            here[ev.key] = (grade, metric)
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
        if not self.open or not len(cols):
            return
        for station, warnings in self.open.items():
            for _grade, metric in warnings.values():
                found = _newest(cols, station, metric, None)
                if found is not None:
                    self.last[f"{station}|{metric}"] = found
        wanted = {f"{s}|{m}" for s, ws in self.open.items() for _g, m in ws.values()}
        for k in [k for k in self.last if k not in wanted]:
            del self.last[k]

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
            found = self.last.get(f"{station}|{metric}")
        if found is None:
            return nodata.Held(Grade(grade), metric, None, 0)
        return nodata.Held(Grade(grade), metric, found[1], found[0])

    # -- durability -------------------------------------------------------------------
    def snapshot(self) -> dict:
        return {"open": {s: {k: list(v) for k, v in ws.items()} for s, ws in self.open.items()},
                "last": {k: list(v) for k, v in self.last.items()}}

    def restore(self, snap: dict | None, active: dict) -> None:
        """Resume from :meth:`snapshot`; a checkpoint written before it (``snap`` None)
        rebuilds the grades from the lifecycle's open warnings, their metrics unknown."""
        if snap is None:
            self.open = {}
            for key, a in active.items():
                rule, _, station = key.partition("@")
                if rule != nodata.RULE_ID and not a.pending and a.grade > Grade.NONE:
                    self.open.setdefault(station, {})[key] = (int(a.grade), "")
            self.last = {}
            return
        self.open = {s: {k: (int(g), str(m)) for k, (g, m) in ws.items()}
                     for s, ws in snap["open"].items()}
        self.last = {k: (int(t), float(v)) for k, (t, v) in snap["last"].items()}


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
