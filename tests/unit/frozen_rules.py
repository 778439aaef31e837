"""The rule engine's functions as they were before issue 17's fixed-cost work (main at
0ebd982), copied unchanged but for their imports: ``test_engine_old_equal.py`` patches
them back into the engine and checks that the current code finds exactly the same.

Frozen on purpose: do not "fix" or tidy this file; it is the reference.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from yujing.rules import localtime
from yujing.rules import tree as ex
from yujing.rules import trend as tr
from yujing.rules import windows as wn
from yujing.rules.arrays import NONE, Grow, seg_first, seg_last, truth
from yujing.rules.compiled import CompiledRule
from yujing.rules.indices import beaufort, fire_index
from yujing.rules.interpret import BINARY, Evaluation
from yujing.rules.lookup import StationLookup
from yujing.rules.reach import WHOLE, Reach
from yujing.rules.series import SeriesStore
from yujing.rules.transitions import Judged, RuleState, _starts
from yujing.rules.windows import EPOCH, SPAN, Flat

Points = dict[CompiledRule, tuple[np.ndarray, np.ndarray]]


def keys(sid: np.ndarray, ts: np.ndarray) -> np.ndarray:
    return sid.astype(np.int64) * SPAN + (ts.astype(np.int64) - EPOCH)


def bounds(self, sid: np.ndarray, t: np.ndarray, window_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) of points of series ``sid`` in ``(t - W, t]``; empty where sid < 0."""
    at = keys(np.maximum(sid, 0), t)
    lo_t = np.maximum(t.astype(np.int64) - window_ms, EPOCH - 1)
    lo = np.searchsorted(self.key, keys(np.maximum(sid, 0), lo_t), side="right")
    hi = np.searchsorted(self.key, at, side="right")
    missing = sid < 0
    if missing.any():
        hi = np.where(missing, lo, hi)
    return lo, hi

# -- aggregates -----------------------------------------------------------------------


def aggregate(flat: Flat, fn: str, sid: np.ndarray, t: np.ndarray, window_ms: int) -> np.ndarray:
    """``fn`` over ``(t - W, t]`` of series ``sid`` for each evaluation point (NaN if empty)."""
    lo, hi = flat.bounds(sid, t, window_ms)
    n = (hi - lo).astype(np.float64)
    empty = hi <= lo
    if fn == "count":
        return n
    with np.errstate(invalid="ignore", divide="ignore"):
        if fn in ("sum", "mean"):
            s = flat.window_sum(lo, hi)
            s = np.where(empty, np.nan, s)
            return s if fn == "sum" else s / n
        if fn == "max":
            return flat.window_extreme(lo, hi, np.maximum)
        if fn == "min":
            return flat.window_extreme(lo, hi, np.minimum)
        if fn == "spread":
            return flat.window_extreme(lo, hi, np.maximum) - flat.window_extreme(lo, hi, np.minimum)
        last_i = np.where(empty, 0, hi - 1)
        first_i = np.where(empty, 0, lo)
        if fn == "last":
            return np.where(empty, np.nan, flat.v[last_i] if flat.v.size else np.nan)
        if fn == "first":
            return np.where(empty, np.nan, flat.v[first_i] if flat.v.size else np.nan)
        if not flat.v.size:
            return np.full(t.shape, np.nan)
        d = flat.v[last_i] - flat.v[first_i]
        if fn == "delta":
            return np.where(hi - lo >= 2, d, np.nan)
        if fn == "rate":  # per hour
            dt = (flat.ts[last_i] - flat.ts[first_i]).astype(np.float64)
            return np.where((hi - lo >= 2) & (dt > 0), d / np.maximum(dt, 1) * 3_600_000, np.nan)
    raise ValueError(f"unknown aggregate {fn!r}")


def of_readings(compiled: list[CompiledRule], store: SeriesStore, lookup: StationLookup,
                st: np.ndarray, m: np.ndarray, t: np.ndarray) -> Points:
    """The readings' points (station, time) per rule that watches them."""
    out = {}
    present = np.zeros(len(store.metric_names), dtype=bool)
    present[m] = True
    for c in compiled:
        mids = [store.metric_index[x] for x in c.metrics if x in store.metric_index]
        if not mids or not present[mids].any():
            continue
        wanted = np.zeros(present.size, dtype=bool)  # a lookup, not np.isin: one pass over m
        wanted[mids] = True
        idx = np.flatnonzero(wanted[m])
        if idx.size == 0:
            continue
        idx = idx[lookup.selected(c, st[idx])]
        if idx.size == 0:
            continue
        out[c] = wn.split_keys(np.unique(keys(st[idx], t[idx])))
    return out


def series_read(points: Points, store: SeriesStore, nst: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ids of the series a chunk's rules read at the stations they judge, and for
    each the time of the earliest point at its station (its windows reach back from there)."""
    if not points:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    first = np.full(nst, np.iinfo(np.int64).max, dtype=np.int64)
    for pst, pt in points.values():
        np.minimum.at(first, pst, pt)
    ids = []
    for c, (pst, _) in points.items():
        ust = np.unique(pst)
        for metric in c.metrics:
            ids.append(store.lookup(ust, metric))
    sid = np.concatenate(ids) if ids else np.empty(0, np.int64)
    sid = np.unique(sid[sid >= 0])
    return sid, first[store.station_of(sid)]


def flat(self, needed: np.ndarray, t_min: np.ndarray, reach: dict[str, Reach]) -> wn.Flat:
    """The readings of the ``needed`` series (sorted ids) a chunk's points can read,
    laid out for the windows: for each series from the start of the longest window
    of its metric before its earliest point ``t_min`` (and at least the readings the
    rules need at or before it), to its newest reading. Stored series are sorted
    and unique already: nothing is sorted here."""
    parts_ts, parts_v, lens = [], [], []
    by_metric = [reach.get(name) for name in self.metric_names]
    for s, t0 in zip(needed.tolist(), t_min.tolist()):
        ts, v = self._buf[s].views()
        r = by_metric[self.metric_of[s]]
        if r is not None and r.ms != WHOLE and ts.size and ts[0] <= t0 - r.ms:
            a, b = np.searchsorted(ts, (t0 - r.ms, t0), side="right").tolist()
            a = max(0, min(a, b - r.readings))
            ts, v = ts[a:], v[a:]
        parts_ts.append(ts)
        parts_v.append(v)
        lens.append(ts.size)
    if not parts_ts:
        return wn.Flat(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    return wn.Flat(np.repeat(needed, lens), np.concatenate(parts_ts), np.concatenate(parts_v))


def trim(self, floor: int, keep: int) -> None:
    """Drop readings at or before ``floor``, but keep the newest ``keep`` readings
    (what an anomaly model looks back on) and always the newest one."""
    n = self.hi - self.lo
    if n == 0:
        return
    cut = int(np.searchsorted(self.ts[self.lo:self.hi], floor, side="right"))
    if keep:
        cut = min(cut, n - keep)
    self.lo += min(max(cut, 0), n - 1)


def selected(self, c: CompiledRule, st: np.ndarray) -> np.ndarray:
    """Does ``c`` watch each station id in ``st``?"""
    elig = self._eligible.setdefault(c.id, Grow(-1, np.int8)).ensure(len(self.names))
    cand = np.unique(st)
    for s in cand[elig[cand] < 0].tolist():
        elig[s] = 1 if c.eligible(self.names[s], self.entry(self.names[s])) else 0
    return elig[st] == 1


def _node(self, node: object, flat: wn.Flat, pst: np.ndarray, pt: np.ndarray,
          group_hits: dict[int, deque], ev: Callable[[object], np.ndarray]) -> np.ndarray:
    if isinstance(node, ex.Num):
        return np.full(pt.shape, node.value)
    if isinstance(node, ex.StationField):
        return self.lookup.field(node.name)[pst]
    if isinstance(node, ex.Agg):
        return aggregate(flat, node.fn, self.store.lookup(pst, node.metric), pt,
                            node.window_ms)
    if isinstance(node, ex.SeriesFn):
        sid = self.store.lookup(pst, node.metric)
        if node.fn == "jump":
            return wn.jump(flat, sid, pt)
        return wn.days_since(flat, sid, pt, node.threshold, node.horizon_ms)
    if isinstance(node, ex.Trend):
        return self._trend(node, flat, pst, pt, ev)
    if isinstance(node, ex.Ahead):
        return self.forecasts.ahead(node.fn, self.store.station_index, node.metric, pst, pt,
                                    node.window_ms)
    if isinstance(node, ex.Dur):
        return np.full(pt.shape, node.ms / tr.HOUR_MS)
    if isinstance(node, ex.Call):
        args = [ev(a) for a in node.args]
        if node.fn == "abs":
            return np.abs(args[0])
        if node.fn == "beaufort":
            return beaufort(args[0])
        if node.fn == "default":
            return np.where(np.isfinite(args[0]), args[0], args[1])
        return fire_index(*args)
    if isinstance(node, ex.TimeOf):
        if node.fn == "hour":
            return localtime.hour(pt, self.tz)
        return localtime.month(pt, self.tz)
    if isinstance(node, ex.GroupCount):
        hits = group_hits.setdefault(id(node), deque())
        return self._group_count(node, hits, truth(ev(node.cond)), pst, pt)
    if isinstance(node, ex.Anomaly):
        return self._anomaly(node, flat, pst, pt)
    if isinstance(node, ex.Unary):
        a = ev(node.arg)
        return ~truth(a) if node.op == "not" else -a
    if isinstance(node, ex.Binary):
        a, b = ev(node.left), ev(node.right)
        with np.errstate(invalid="ignore", divide="ignore"):
            if node.op == "and":
                return truth(a) & truth(b)
            if node.op == "or":
                return truth(a) | truth(b)
            return BINARY[node.op](a, b)
    raise TypeError(f"unknown expression node {node!r}")


def _trend(self, node: ex.Trend, flat: wn.Flat, pst: np.ndarray, pt: np.ndarray,
           ev: Callable[[object], np.ndarray]) -> np.ndarray:
    """eta() or project(). A fit is shared by the rule's nodes of the same metric, window
    (and for eta the same threshold and limit: a grade and its clear written alike); an
    eta() fit only covers the points that could reach its threshold in time."""
    memo = ev.memo if isinstance(ev, Evaluation) else {}
    threshold = ev(node.threshold) if node.fn == "eta" else None
    limit = node.limit_ms if node.fn == "eta" else 0
    key = ("trend", node.metric, node.window_ms, limit, ex.unparse(node.threshold),
           node.falling)
    if key not in memo:
        reach = (threshold, limit) if limit else None
        memo[key] = tr.fit(flat, self.store.lookup(pst, node.metric), pt, node.window_ms,
                           reach, node.falling)
    if node.fn == "eta":
        return tr.eta(memo[key], threshold, node.falling)
    return tr.project(memo[key], node.horizon_ms)


def held(cond: np.ndarray, pst: np.ndarray, pt: np.ndarray, hold_ms: int,
         starts: np.ndarray) -> np.ndarray:
    """``cond`` that has held for ``hold_ms`` (event time). ``starts`` (by station) is
    the start of the true run each station ended its previous chunk in, or NONE; it
    is updated for the next chunk."""
    if not hold_ms:
        return cond
    first = seg_first(pst)
    prev_true = np.empty_like(cond)
    prev_true[1:] = cond[:-1]
    prior = starts[pst]
    prev_true[first] = prior[first] != NONE
    new_run = cond & ~prev_true
    # marker: a run's start time at its first point, the point's own time where false
    begin = np.where(first & cond & prev_true, prior, pt)
    marker = np.where(new_run | ~cond | (first & cond), keys(pst, np.maximum(begin, wn.EPOCH)), 0)
    run_start = np.maximum.accumulate(marker) - pst * wn.SPAN + wn.EPOCH
    out = cond & (pt - run_start >= hold_ms)
    last = seg_last(pst)
    starts[pst[last]] = np.where(cond[last], run_start[last], NONE)
    return out


def sticky(grade: np.ndarray, clear: np.ndarray, pst: np.ndarray, carry: np.ndarray
           ) -> np.ndarray:
    """Without ``downgrade: true`` a warning keeps its highest grade until it clears:
    a running maximum of the grade that restarts at every clear. ``carry`` (by station)
    is the grade held at the end of the previous chunk; it is updated."""
    first = seg_first(pst)
    val = grade.copy()
    carried = first & ~clear
    val[carried] = np.maximum(val[carried], carry[pst[carried]])
    group = np.cumsum(first | clear)
    out = np.maximum.accumulate(group * 16 + val) - group * 16
    last = seg_last(pst)
    carry[pst[last]] = out[last]
    return out


def judge(c: CompiledRule, state: RuleState, conds: list[np.ndarray],
          clear_cond: np.ndarray | None, pst: np.ndarray, pt: np.ndarray, nst: int) -> Judged:
    """Grade the points from each grade's condition (in ``c.grades`` order) and the
    clear condition (None: the rule clears when no grade condition holds)."""
    grade = np.zeros(pst.size, dtype=np.int64)
    pend = np.zeros(pst.size, dtype=np.int64)
    any_cond = np.zeros(pst.size, dtype=bool)
    for i, ((g, check), cond) in enumerate(zip(c.grades, conds)):
        ok = held(cond, pst, pt, check.hold_ms, _starts(state, i, check, nst))
        any_cond |= cond
        grade[ok & (int(g) > grade)] = int(g)
        pend[cond & ~ok & (int(g) > pend)] = int(g)
    if c.clear is not None and clear_cond is not None:
        k = len(c.grades)
        clear = held(clear_cond, pst, pt, c.clear.hold_ms, _starts(state, k, c.clear, nst)) \
            & ~any_cond
    else:
        clear = ~any_cond
    if not c.rule.downgrade:
        grade = sticky(grade, clear, pst, state.sticky.ensure(nst))
    pend = np.where(pend > grade, pend, 0)
    outcome = grade * 16 + pend * 2 + clear.astype(np.int64)

    last_out = state.last_outcome.ensure(nst)
    first = seg_first(pst)
    prev = np.empty_like(outcome)
    prev[1:] = outcome[:-1]
    prev[first] = last_out[pst[first]]
    last = seg_last(pst)
    last_out[pst[last]] = outcome[last]
    state.last_eval.ensure(nst)[pst[last]] = pt[last]
    return Judged(grade, pend, clear, np.flatnonzero(outcome != prev))
