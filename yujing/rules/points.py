"""Where each rule is judged: evaluation points (station, event time), sorted.

Every accepted reading is a point for the rules that read its metric at its
station. Rules with ``evaluate_every`` also get points on an event-time grid, so
time passing alone can clear a warning on event metrics. A point at or before a
station's newest judged time was judged already: a replayed or late reading
re-judges that newest time instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from yujing.rules import windows as wn
from yujing.rules.arrays import NONE
from yujing.rules.compiled import CompiledRule
from yujing.rules.lookup import StationLookup
from yujing.rules.series import SeriesStore
from yujing.rules.transitions import RuleState

Points = dict[CompiledRule, tuple[np.ndarray, np.ndarray]]
MAX_TICKS = 10_000  # per station and chunk: a day of minutes, a week of 1-minute gaps


def of_readings(compiled: list[CompiledRule], store: SeriesStore, lookup: StationLookup,
                st: np.ndarray, m: np.ndarray, t: np.ndarray) -> Points:
    """The readings' points (station, time) per rule that watches them."""
    out = {}
    present = np.zeros(len(store.metric_names), dtype=bool)
    present[m] = True
    names = {store.metric_names[i] for i in np.flatnonzero(present).tolist()}
    ukeys = inverse = ust = ut = None  # the envelope's distinct (station, time), once
    for c in compiled:
        if c.metrics.isdisjoint(names):  # most rules, in a small envelope: no numpy work
            continue
        if ukeys is None:
            ukeys, inverse = np.unique(wn.keys(st, t), return_inverse=True)
            ust, ut = wn.split_keys(ukeys)
        mids = [store.metric_index[x] for x in c.metrics if x in store.metric_index]
        wanted = np.zeros(present.size, dtype=bool)  # a lookup, not np.isin: one pass over m
        wanted[mids] = True
        hit = np.zeros(ukeys.size, dtype=bool)
        hit[inverse[wanted[m]]] = True  # a (station, time) with a reading the rule reads
        hit &= lookup.selected(c, ust)
        if hit.any():
            out[c] = (ust[hit], ut[hit])
    return out


def add_ticks(compiled: list[CompiledRule], states: dict[str, RuleState], points: Points,
              until_ms: int, nst: int) -> None:
    """Grid points for rules with ``evaluate_every``: every station the rule has judged
    is evaluated on the event-time grid up to ``until_ms``, in time order with its
    reading points, the same way whether readings came one by one or in one chunk."""
    for c in compiled:
        if not c.tick_ms:
            continue
        tick = c.tick_ms
        start = states[c.id].last_eval.ensure(nst)[:nst].copy()
        pst, pt = points.get(c, (np.empty(0, np.int64), np.empty(0, np.int64)))
        if pst.size:  # stations judged for the first time start at their first reading
            first = np.full(nst, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first, pst, pt)
            fresh = (start == NONE) & (first < np.iinfo(np.int64).max)
            start[fresh] = first[fresh]
        tracked = np.flatnonzero(start != NONE)
        if tracked.size == 0:
            continue
        g0 = (start[tracked] // tick + 1) * tick
        g1 = until_ms // tick * tick
        n = np.clip((g1 - g0) // tick + 1, 0, MAX_TICKS)
        if not n.any():
            continue
        gst = np.repeat(tracked, n)
        offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        gpt = np.repeat(g0, n) + offsets * tick
        points[c] = wn.split_keys(np.unique(np.concatenate((wn.keys(pst, pt), wn.keys(gst, gpt)))))


def of_groups(compiled: list[CompiledRule], groups: Callable[[CompiledRule], list[list[str]]],
              store: SeriesStore, lookup: StationLookup, points: Points) -> Points:
    """For rules that read a group model: points for every station of the group (that the
    store knows and the rule selects) at each time one of them has a point. Why: a reading
    of one station may close the group's row of that time for all of them
    (models/group_stream.py), so each is judged on that row then, not at its own next
    reading an interval later."""
    out: Points = {}
    for c in compiled:
        if c not in points:
            continue
        pst, pt = points[c]
        for stations in groups(c):
            ids = np.array([store.station_index[s] for s in stations if s in store.station_index],
                           dtype=np.int64)
            mine = np.isin(pst, ids)
            if ids.size < 2 or not mine.any():
                continue
            times = np.unique(pt[mine])
            st, t = np.repeat(ids, times.size), np.tile(times, ids.size)
            pick = lookup.selected(c, st)
            if pick.any():
                old = out.get(c, (st[:0], t[:0]))
                out[c] = (np.concatenate((old[0], st[pick])), np.concatenate((old[1], t[pick])))
    return {c: wn.split_keys(np.unique(wn.keys(*p))) for c, p in out.items()}


def rejudge_stale(pst: np.ndarray, pt: np.ndarray, last_eval: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Points at or before the newest judged time were judged already; a replayed or
    late reading re-judges that newest time instead, whose window it may have changed.
    A pure replay changes nothing there, so it finds nothing."""
    stale = pt <= last_eval[pst]
    if not stale.any():
        return pst, pt
    again = np.unique(pst[stale])
    return wn.split_keys(np.unique(np.concatenate((wn.keys(pst[~stale], pt[~stale]),
                                                   wn.keys(again, last_eval[again])))))


def series_read(points: Points, store: SeriesStore, nst: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ids of the series a chunk's rules read at the stations they judge, and for
    each the time of the earliest point at its station (its windows reach back from there)."""
    if not points:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    first = np.full(nst, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, np.concatenate([p[0] for p in points.values()]),
                  np.concatenate([p[1] for p in points.values()]))
    by_metric: dict[str, list[np.ndarray]] = {}  # each metric looked up once, for all rules
    for c, (pst, _) in points.items():
        for metric in c.metrics:
            by_metric.setdefault(metric, []).append(pst)
    ids = [store.lookup(np.unique(np.concatenate(sts)), metric) for metric, sts in by_metric.items()]
    sid = np.concatenate(ids) if ids else np.empty(0, np.int64)
    sid = np.unique(sid[sid >= 0])
    return sid, first[store.station_of(sid)]
