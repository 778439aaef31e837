"""The rule evaluator: columns of readings in, findings out, as array work.

The worker (one envelope at a time) and the backtest (large chunks) call the
same ``Engine.process``. Every reading is an evaluation point for the rules
that read its metric at its station; the graded outcome is computed for all
points of all stations at once (``flat.py``), and a Finding is emitted only
where a station's outcome changes, so the result does not depend on how the
readings were split into envelopes.

Window state is each series' recent readings keyed by their own timestamps:
replaying a reading changes nothing. A reading more than ``lateness_ms``
behind the newest reading that arrived before it in its series is returned as
late (for the dead-letter topic), never merged silently.
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from yujing.domain import Finding, Grade
from yujing.durations import format_duration
from yujing.rules import expr as ex
from yujing.rules import flat as fl
from yujing.rules.compiled import Check, CompiledRule, compile_rule
from yujing.rules.indices import beaufort, fire_index
from yujing.rules.schema import Rule

_NONE = np.iinfo(np.int64).min
_NO_OUTCOME = -1


@dataclass
class Stats:
    readings: int = 0
    evaluated: int = 0
    late: int = 0
    unmatched: int = 0


@dataclass(frozen=True)
class SeriesView:
    ts: np.ndarray
    v: np.ndarray


class _Grow:
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


@dataclass
class _RuleState:
    last_outcome: _Grow = field(default_factory=lambda: _Grow(_NO_OUTCOME, np.int64))
    last_eval: _Grow = field(default_factory=lambda: _Grow(_NONE, np.int64))
    eligible: _Grow = field(default_factory=lambda: _Grow(-1, np.int8))
    run_start: dict[int, _Grow] = field(default_factory=dict)  # per check: start of true run
    sticky: _Grow = field(default_factory=lambda: _Grow(0, np.int64))  # grade held until clear
    group_hits: dict[int, deque] = field(default_factory=dict)  # per GroupCount node


class Engine:
    def __init__(self, rules: list[Rule], lateness_ms: int = 3_600_000,
                 registry: Any | None = None, models: Any | None = None) -> None:
        """``models`` gives anomaly models by name (``get(name)`` → detector or None),
        e.g. a :class:`yujing.models.registry.ModelRegistry` view; rules that name a
        model it lacks never fire (``yujing rules check --models`` reports them)."""
        self.compiled = [compile_rule(r) for r in rules if r.enabled]
        self.rules = {c.id: c for c in self.compiled}
        if len(self.rules) != len(self.compiled):
            dup = sorted({c.id for c in self.compiled if sum(x.id == c.id for x in self.compiled) > 1})
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(dup)}")
        self.lateness_ms = lateness_ms
        self.registry = registry
        self.models = models
        self._keep_points: dict[str, int] = {}
        self._resolve_models()
        self.stats = Stats()
        self.station_index: dict[str, int] = {}
        self.station_names: list[str] = []
        self.metric_index: dict[str, int] = {}
        self.metric_names: list[str] = []
        self.series_ts: list[np.ndarray] = []
        self.series_v: list[np.ndarray] = []
        self.series_metric: list[int] = []
        self.series_horizon: list[int] = []  # window kept: the longest rule on that station
        self._sid = np.full((64, 8), -1, dtype=np.int64)
        self._newest = _Grow(_NONE, np.int64)
        self._horizon_by_metric: dict[str, int] = {}
        for c in self.compiled:
            for m in c.metrics:
                self._horizon_by_metric[m] = max(self._horizon_by_metric.get(m, 0), c.horizon_ms)
        self._metric_used = np.zeros(0, dtype=bool)
        self._state = {c.id: _RuleState() for c in self.compiled}
        self._watermark = 0
        self._fields: dict[str, _Grow] = {}
        self._groups: dict[str, tuple[_Grow, dict[str, int]]] = {}

    def _resolve_models(self) -> None:
        """Add each named model's metric to its rules, and keep enough readings for it."""
        for c in self.compiled:
            for name in c.models:
                model = self.models.get(name) if self.models is not None else None
                metric = getattr(model, "metric", None)
                if metric:
                    c.metrics.add(metric)
                    keep = int(getattr(model, "history", 0)) + 1
                    self._keep_points[metric] = max(self._keep_points.get(metric, 1), keep)

    def set_models(self, models: Any | None) -> None:
        """Use reloaded anomaly models (new versions from the model registry)."""
        self.models = models
        self._resolve_models()
        for c in self.compiled:
            for m in c.metrics:
                self._horizon_by_metric[m] = max(self._horizon_by_metric.get(m, 0), c.horizon_ms)
                if m in self.metric_index:
                    self._metric_used[self.metric_index[m]] = True
        self._recompute_horizons()

    def set_registry(self, registry: Any | None) -> None:
        """Use a reloaded station registry: selectors and station fields are looked up again."""
        self.registry = registry
        for state in self._state.values():
            state.eligible = _Grow(-1, np.int8)
        self._fields.clear()
        self._groups.clear()
        self._recompute_horizons()

    @property
    def series(self) -> dict[tuple[str, str], "SeriesView"]:
        """(station, metric) → the retained window of that series (for inspection and tests)."""
        out = {}
        rows, cols = self._sid.shape
        for st, name in enumerate(self.station_names):
            for mi, metric in enumerate(self.metric_names):
                if st < rows and mi < cols and self._sid[st, mi] >= 0:
                    s = int(self._sid[st, mi])
                    out[(name, metric)] = SeriesView(self.series_ts[s], self.series_v[s])
        return out

    # -- identities -------------------------------------------------------------------------

    def horizon_ms(self, metric: str) -> int:
        return self._horizon_by_metric.get(metric, 0) + self.lateness_ms

    def _station(self, name: str) -> int:
        i = self.station_index.get(name)
        if i is None:
            i = self.station_index[name] = len(self.station_names)
            self.station_names.append(name)
            entry = self.registry.get(name) if self.registry is not None else None
            for fname, arr in self._fields.items():
                arr.ensure(i + 1)[i] = _field_value(entry, fname)
            for gname, (arr, codes) in self._groups.items():
                arr.ensure(i + 1)[i] = _group_code(entry, gname, codes)
        return i

    def _metric(self, name: str) -> int:
        i = self.metric_index.get(name)
        if i is None:
            i = self.metric_index[name] = len(self.metric_names)
            self.metric_names.append(name)
            self._metric_used = np.append(self._metric_used, name in self._horizon_by_metric)
        return i

    def _series_ids(self, st: np.ndarray, m: np.ndarray) -> np.ndarray:
        rows, cols = self._sid.shape
        if st.size and (st.max() >= rows or m.max() >= cols):
            grown = np.full((max(rows, int(st.max()) + 1) * 2, max(cols, int(m.max()) + 1) * 2),
                            -1, dtype=np.int64)
            grown[:rows, :cols] = self._sid
            self._sid = grown
        sid = self._sid[st, m]
        missing = sid < 0
        if missing.any():
            for s, mm in np.unique(np.stack((st[missing], m[missing]), axis=1), axis=0).tolist():
                self._sid[s, mm] = len(self.series_ts)
                self.series_ts.append(np.empty(0, np.int64))
                self.series_v.append(np.empty(0, np.float64))
                self.series_metric.append(mm)
                self.series_horizon.append(self._horizon_for(s, mm))
            self._newest.ensure(len(self.series_ts))
            sid = self._sid[st, m]
        return sid

    def _horizon_for(self, st: int, m: int) -> int:
        """How far back one series must reach: the longest window of the rules that read
        this metric at this station (a 10-day dry-spell rule on forest stations does not make
        every rain gauge keep 10 days)."""
        metric, name = self.metric_names[m], self.station_names[st]
        entry = self.registry.get(name) if self.registry is not None else None
        longest = 0
        for c in self.compiled:
            if metric in c.metrics and c.horizon_ms > longest and c.eligible(name, entry):
                longest = c.horizon_ms
        return longest + self.lateness_ms

    def _recompute_horizons(self) -> None:
        rows, cols = self._sid.shape
        for st in range(min(rows, len(self.station_names))):
            for m in range(min(cols, len(self.metric_names))):
                sid = int(self._sid[st, m])
                if sid >= 0:
                    self.series_horizon[sid] = self._horizon_for(st, m)

    def _lookup(self, st: np.ndarray, metric: str) -> np.ndarray:
        m = self.metric_index.get(metric)
        if m is None or m >= self._sid.shape[1]:
            return np.full(st.shape, -1, dtype=np.int64)
        return np.where(st < self._sid.shape[0], self._sid[np.minimum(st, self._sid.shape[0] - 1), m], -1)

    def _field(self, name: str) -> np.ndarray:
        if name not in self._fields:
            arr = _Grow(np.nan, np.float64)
            a = arr.ensure(len(self.station_names))
            for i, s in enumerate(self.station_names):
                a[i] = _field_value(self.registry.get(s) if self.registry is not None else None, name)
            self._fields[name] = arr
        return self._fields[name].ensure(len(self.station_names))

    def _group(self, name: str) -> np.ndarray:
        if name not in self._groups:
            arr, codes = _Grow(-1, np.int64), {}
            a = arr.ensure(len(self.station_names))
            for i, s in enumerate(self.station_names):
                a[i] = _group_code(self.registry.get(s) if self.registry is not None else None,
                                   name, codes)
            self._groups[name] = (arr, codes)
        return self._groups[name][0].ensure(len(self.station_names))

    # -- the chunk ------------------------------------------------------------------------

    def process(self, stations: list[str], si: np.ndarray, metrics: list[str], mi: np.ndarray,
                ts: np.ndarray, v: np.ndarray) -> tuple[list[Finding], list[int]]:
        """Evaluate one envelope or chunk (dictionary-encoded columns, arrival order).

        Returns the findings in (event time, rule, station) order and the
        indices of readings rejected as too late.
        """
        n = int(ts.size)
        self.stats.readings += n
        if n == 0:
            return [], []
        st_map = np.fromiter((self._station(s) for s in stations), np.int64, len(stations))
        m_map = np.fromiter((self._metric(x) for x in metrics), np.int64, len(metrics))
        st_all, m_all = st_map[si], m_map[mi]
        used = self._metric_used[m_all]
        self.stats.unmatched += int(n - used.sum())
        idx = np.flatnonzero(used)
        if idx.size == 0:
            return [], []
        st, m = st_all[idx], m_all[idx]
        t = ts[idx].astype(np.int64)
        val = v[idx].astype(np.float64)
        sid = self._series_ids(st, m)

        # Lateness, judged in arrival order against what arrived before in the series.
        order = np.argsort(sid, kind="stable")
        s_sorted, t_sorted = sid[order], t[order]
        running = np.maximum.accumulate(fl.keys(s_sorted, t_sorted)) - s_sorted * fl.SPAN + fl.EPOCH
        newest = self._newest.ensure(len(self.series_ts))
        seen = np.maximum(running, newest[s_sorted])
        ok_sorted = t_sorted >= seen - self.lateness_ms
        late = np.sort(idx[order[~ok_sorted]]).tolist()
        self.stats.late += len(late)
        keep = order[ok_sorted]
        keep.sort()  # back to arrival order
        if keep.size == 0:
            return [], late
        st, m, t, val, sid = st[keep], m[keep], t[keep], val[keep], sid[keep]
        np.maximum.at(newest, sid, t)

        points = self._points(st, m, t)
        self._add_ticks(points, max(self._watermark, int(t.max())))
        self._watermark = max(self._watermark, int(t.max()))
        needed = set(np.unique(sid).tolist())
        for c, (pst, _) in points.items():
            ust = np.unique(pst)
            for metric in c.metrics:
                look = self._lookup(ust, metric)
                needed.update(look[look >= 0].tolist())
        flat = self._merge(np.array(sorted(needed), dtype=np.int64), sid, t, val)

        findings: list[Finding] = []
        for c, (pst, pt) in points.items():
            findings.extend(self._evaluate(c, flat, pst, pt))
        self._write_back(flat, np.unique(sid))
        findings.sort(key=lambda f: (f.ts, f.rule, f.station))
        return findings, late

    def _points(self, st: np.ndarray, m: np.ndarray, t: np.ndarray
                ) -> dict[CompiledRule, tuple[np.ndarray, np.ndarray]]:
        """Evaluation points (station, time), sorted, per rule."""
        out = {}
        nst = len(self.station_names)
        for c in self.compiled:
            mids = [self.metric_index[x] for x in c.metrics if x in self.metric_index]
            if not mids:
                continue
            sel = np.isin(m, mids)
            if not sel.any():
                continue
            elig = self._state[c.id].eligible.ensure(nst)
            cand = np.unique(st[sel])
            unknown = cand[elig[cand] < 0]
            for s in unknown.tolist():
                name = self.station_names[s]
                entry = self.registry.get(name) if self.registry is not None else None
                elig[s] = 1 if c.eligible(name, entry) else 0
            sel &= elig[st] == 1
            if not sel.any():
                continue
            k = np.unique(fl.keys(st[sel], t[sel]))
            pst = k // fl.SPAN
            pt = k - pst * fl.SPAN + fl.EPOCH
            out[c] = (pst, pt)
        return out

    _MAX_TICKS = 10_000  # per station and chunk: a day of minutes, a week of 1-minute gaps

    def _add_ticks(self, points: dict, until_ms: int) -> None:
        """Grid points for rules with ``evaluate_every``: every station the rule has judged
        is evaluated on the event-time grid up to ``until_ms``, in time order with its
        reading points, so time passing alone can clear a warning on event metrics, the
        same way whether readings came one by one or in one chunk."""
        nst = len(self.station_names)
        for c in self.compiled:
            if not c.tick_ms:
                continue
            tick = c.tick_ms
            last_eval = self._state[c.id].last_eval.ensure(nst)
            start = last_eval[:nst].copy()
            pst, pt = points.get(c, (np.empty(0, np.int64), np.empty(0, np.int64)))
            if pst.size:  # stations judged for the first time start at their first reading
                first = np.full(nst, np.iinfo(np.int64).max, dtype=np.int64)
                np.minimum.at(first, pst, pt)
                fresh = (start == _NONE) & (first < np.iinfo(np.int64).max)
                start[fresh] = first[fresh]
            tracked = np.flatnonzero(start != _NONE)
            if tracked.size == 0:
                continue
            g0 = (start[tracked] // tick + 1) * tick
            g1 = until_ms // tick * tick
            n = np.clip((g1 - g0) // tick + 1, 0, self._MAX_TICKS)
            if not n.any():
                continue
            gst = np.repeat(tracked, n)
            offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
            gpt = np.repeat(g0, n) + offsets * tick
            k = np.unique(np.concatenate((fl.keys(pst, pt), fl.keys(gst, gpt))))
            new_st = k // fl.SPAN
            points[c] = (new_st, k - new_st * fl.SPAN + fl.EPOCH)

    def _merge(self, needed: np.ndarray, sid: np.ndarray, t: np.ndarray, val: np.ndarray) -> fl.Flat:
        old_ts = [self.series_ts[s] for s in needed.tolist()]
        lens = np.fromiter((a.size for a in old_ts), np.int64, len(old_ts))
        o_sid = np.repeat(needed, lens)
        o_ts = np.concatenate(old_ts) if old_ts else np.empty(0, np.int64)
        o_v = np.concatenate([self.series_v[s] for s in needed.tolist()]) if old_ts else np.empty(0)
        a_sid = np.concatenate((o_sid, sid))
        a_ts = np.concatenate((o_ts, t))
        a_v = np.concatenate((o_v, val))
        arrival = np.arange(a_sid.size)  # old before new, new in arrival order
        order = np.lexsort((arrival, a_ts, a_sid))
        a_sid, a_ts, a_v = a_sid[order], a_ts[order], a_v[order]
        if a_sid.size > 1:
            k = fl.keys(a_sid, a_ts)
            last = np.empty(k.size, dtype=bool)
            last[-1] = True
            np.not_equal(k[1:], k[:-1], out=last[:-1])  # the last arrival wins a timestamp
            a_sid, a_ts, a_v = a_sid[last], a_ts[last], a_v[last]
        return fl.Flat(a_sid, a_ts, a_v)

    def _write_back(self, flat: fl.Flat, touched: np.ndarray) -> None:
        lo = np.searchsorted(flat.sid, touched, side="left")
        hi = np.searchsorted(flat.sid, touched, side="right")
        newest = self._newest.a[touched]
        horizon = np.asarray([self.series_horizon[s] for s in touched.tolist()], dtype=np.int64)
        cut = np.searchsorted(flat.key, fl.keys(touched, np.maximum(newest - horizon, fl.EPOCH)),
                              side="right")
        if self._keep_points:  # anomaly models look back a number of readings, not a time
            keep = np.asarray([self._keep_points.get(self.metric_names[self.series_metric[s]], 1)
                               for s in touched.tolist()], dtype=np.int64)
            cut = np.minimum(cut, hi - keep)
        cut = np.minimum(np.maximum(cut, lo), hi - 1)  # always keep the newest reading
        for s, a, b in zip(touched.tolist(), cut.tolist(), hi.tolist()):
            self.series_ts[s] = flat.ts[a:b].copy()
            self.series_v[s] = flat.v[a:b].copy()

    # -- one rule -------------------------------------------------------------------------

    def _evaluate(self, c: CompiledRule, flat: fl.Flat, pst: np.ndarray, pt: np.ndarray
                  ) -> list[Finding]:
        state = self._state[c.id]
        nst = len(self.station_names)
        last_eval = state.last_eval.ensure(nst)
        stale = pt <= last_eval[pst]
        if stale.any():
            # Points at or before the newest evaluated time were judged already; a replayed
            # or late reading re-evaluates that newest time instead, whose window it may have
            # changed. A pure replay changes nothing there, so it finds nothing.
            again = np.unique(pst[stale])
            k = np.unique(np.concatenate((fl.keys(pst[~stale], pt[~stale]),
                                          fl.keys(again, last_eval[again]))))
            pst = k // fl.SPAN
            pt = k - pst * fl.SPAN + fl.EPOCH
        self.stats.evaluated += int(pt.size)
        memo: dict[int, np.ndarray] = {}

        def ev(node: object) -> np.ndarray:
            key = id(node)
            if key not in memo:
                memo[key] = self._node(node, c, state, flat, pst, pt, ev)
            return memo[key]

        seg_first = np.ones(pst.size, dtype=bool)
        seg_first[1:] = pst[1:] != pst[:-1]
        grade = np.zeros(pst.size, dtype=np.int64)
        pend = np.zeros(pst.size, dtype=np.int64)
        any_cond = np.zeros(pst.size, dtype=bool)
        for i, (g, check) in enumerate(c.grades):
            cond = _truth(ev(check.expr.tree))
            held = self._held(state, i, check, cond, pst, pt, seg_first)
            any_cond |= cond
            grade[held & (int(g) > grade)] = int(g)
            pend[cond & ~held & (int(g) > pend)] = int(g)
        if c.clear is not None:
            cond = _truth(ev(c.clear.expr.tree))
            clear = self._held(state, len(c.grades), c.clear, cond, pst, pt, seg_first) & ~any_cond
        else:
            clear = ~any_cond
        if not c.rule.downgrade:
            grade = self._sticky(state, grade, clear, pst, seg_first)
        pend = np.where(pend > grade, pend, 0)
        outcome = grade * 16 + pend * 2 + clear.astype(np.int64)

        last_out = state.last_outcome.ensure(nst)
        prev = np.empty_like(outcome)
        prev[1:] = outcome[:-1]
        prev[seg_first] = last_out[pst[seg_first]]
        seg_last = np.ones(pst.size, dtype=bool)
        seg_last[:-1] = pst[1:] != pst[:-1]
        last_out[pst[seg_last]] = outcome[seg_last]
        last_eval[pst[seg_last]] = pt[seg_last]

        out = []
        checks = dict(c.grades)
        for i in np.flatnonzero(outcome != prev).tolist():
            g, p = Grade(int(grade[i])), Grade(int(pend[i]))
            if g:
                check, label, is_pending, is_clear = checks[g], g.label, False, False
            elif p:
                check, label, is_pending, is_clear = checks[p], f"{p.label} pending", True, False
                g = p
            elif clear[i]:
                check, label, is_pending, is_clear = c.clear, "clear", False, True
            else:
                continue  # between grade and clear: nothing to say (hysteresis band)
            tree = check.expr.tree if check is not None else None
            prim = ex.primary(tree, lambda n, i=i: bool(_truth(ev(n))[i])) \
                if tree is not None else None
            value = float(ev(prim)[i]) if prim is not None else float("nan")
            window_ms = ex.first_window_ms(prim if prim is not None else tree) \
                if tree is not None else 0
            what = ex.unparse(prim) if prim is not None else "no grade condition"
            shown = "n/a" if np.isnan(value) else f"{value:g}"
            rule_text = f"{label}: {check.text}" if check is not None else label
            if check is not None and check.hold_ms:
                rule_text += f" for {format_duration(check.hold_ms)}"
            out.append(Finding(c.id, self.station_names[int(pst[i])], int(pt[i]), g, is_clear,
                               value, format_duration(window_ms) if window_ms else "",
                               f"{what} = {shown} ({rule_text})", is_pending))
        return out

    def _sticky(self, state: _RuleState, grade: np.ndarray, clear: np.ndarray, pst: np.ndarray,
                seg_first: np.ndarray) -> np.ndarray:
        """Without ``downgrade: true`` a warning keeps its highest grade until it clears:
        a running maximum of the grade that restarts at every clear, carried across chunks."""
        carry = state.sticky.ensure(len(self.station_names))
        val = grade.copy()
        carried = seg_first & ~clear
        val[carried] = np.maximum(val[carried], carry[pst[carried]])
        group = np.cumsum(seg_first | clear)
        held = np.maximum.accumulate(group * 16 + val) - group * 16
        seg_last = np.ones(pst.size, dtype=bool)
        seg_last[:-1] = pst[1:] != pst[:-1]
        carry[pst[seg_last]] = held[seg_last]
        return held

    def _held(self, state: _RuleState, i: int, check: Check, cond: np.ndarray, pst: np.ndarray,
              pt: np.ndarray, seg_first: np.ndarray) -> np.ndarray:
        """``cond`` that has held for the check's ``for:`` time (event time)."""
        if not check.hold_ms:
            return cond
        starts = state.run_start.setdefault(i, _Grow(_NONE, np.int64)).ensure(
            len(self.station_names))
        prev_true = np.empty_like(cond)
        prev_true[1:] = cond[:-1]
        prior = starts[pst]
        prev_true[seg_first] = prior[seg_first] != _NONE
        new_run = cond & ~prev_true
        # marker: a run's start time at its first point, the point's own time where false
        begin = np.where(seg_first & cond & prev_true, prior, pt)
        marker = np.where(new_run | ~cond | (seg_first & cond), fl.keys(pst, np.maximum(begin, fl.EPOCH)), 0)
        run_start = np.maximum.accumulate(marker) - pst * fl.SPAN + fl.EPOCH
        held = cond & (pt - run_start >= check.hold_ms)
        seg_last = np.ones(pst.size, dtype=bool)
        seg_last[:-1] = pst[1:] != pst[:-1]
        starts[pst[seg_last]] = np.where(cond[seg_last], run_start[seg_last], _NONE)
        return held

    def _node(self, node: object, c: CompiledRule, state: _RuleState, flat: fl.Flat,
              pst: np.ndarray, pt: np.ndarray, ev: Any) -> np.ndarray:
        if isinstance(node, ex.Num):
            return np.full(pt.shape, node.value)
        if isinstance(node, ex.StationField):
            return self._field(node.name)[pst]
        if isinstance(node, ex.Agg):
            return fl.aggregate(flat, node.fn, self._lookup(pst, node.metric), pt, node.window_ms)
        if isinstance(node, ex.SeriesFn):
            sid = self._lookup(pst, node.metric)
            if node.fn == "jump":
                return fl.jump(flat, sid, pt)
            return fl.days_since(flat, sid, pt, node.threshold, node.horizon_ms)
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
            local = (pt + 8 * 3_600_000).astype("datetime64[ms]")
            if node.fn == "hour":
                return ((pt // 1000 + 8 * 3600) // 3600 % 24).astype(np.float64)
            return (local.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.float64)
        if isinstance(node, ex.GroupCount):
            return self._group_count(node, state, _truth(ev(node.cond)), pst, pt)
        if isinstance(node, ex.Anomaly):
            return self._anomaly(node, flat, pst, pt)
        if isinstance(node, ex.Unary):
            a = ev(node.arg)
            return ~_truth(a) if node.op == "not" else -a
        if isinstance(node, ex.Binary):
            a, b = ev(node.left), ev(node.right)
            with np.errstate(invalid="ignore", divide="ignore"):
                if node.op == "and":
                    return _truth(a) & _truth(b)
                if node.op == "or":
                    return _truth(a) | _truth(b)
                return _BINARY[node.op](a, b)
        raise TypeError(f"unknown expression node {node!r}")

    def _anomaly(self, node: ex.Anomaly, flat: fl.Flat, pst: np.ndarray, pt: np.ndarray
                 ) -> np.ndarray:
        """The model's score for each point's newest reading of the model's metric.

        Each station's retained series is scored whole (scores use only the past and the
        engine keeps the readings a model looks back on), so the result does not depend
        on how readings were batched.
        """
        out = np.full(pt.size, np.nan)
        model = self.models.get(node.model) if self.models is not None else None
        if model is None or not getattr(model, "metric", None):
            return out
        from yujing.models.scoring import score_series  # models are pure; imported on first use

        sid = self._lookup(pst, model.metric)
        for s in np.unique(sid[sid >= 0]).tolist():
            a, b = np.searchsorted(flat.sid, [s, s + 1])
            if b <= a:
                continue
            seg_ts, seg_v = flat.ts[a:b], flat.v[a:b]
            st = int(pst[np.flatnonzero(sid == s)[0]])
            scores = score_series(model, seg_ts, seg_v, self.station_names[st])
            sel = np.flatnonzero(sid == s)
            i = np.searchsorted(seg_ts, pt[sel], side="right") - 1
            out[sel] = np.where(i >= 0, scores[np.clip(i, 0, None)], np.nan)
        return out

    def _group_count(self, node: ex.GroupCount, state: _RuleState, cond: np.ndarray,
                     pst: np.ndarray, pt: np.ndarray) -> np.ndarray:
        """Distinct stations of the same group whose condition held within the window.

        Detections are rare, so this walks the true points in time order.
        """
        groups = self._group(node.by)
        hits = state.group_hits.setdefault(id(node), deque())
        out = np.zeros(pt.size, dtype=np.float64)
        order = np.argsort(pt, kind="stable")
        for i in order.tolist():
            t, s = int(pt[i]), int(pst[i])
            g = int(groups[s])
            if cond[i] and g >= 0:
                hits.append((t, s, g))
            while hits and hits[0][0] <= t - node.window_ms - self.lateness_ms:
                hits.popleft()
            if g >= 0:
                out[i] = len({hs for (ht, hs, hg) in hits if hg == g and t - node.window_ms < ht <= t})
        return out


    # -- durability -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything ``process`` carries from one chunk to the next, as plain values and
        little-endian array bytes, for :meth:`restore` in a fresh engine after a restart.

        Caches derived from the rules and the registry (eligibility, station fields, group
        codes, horizons) are left out: the restored engine rebuilds them from its own rules
        and registry, so a changed registry is honoured. Timestamps are stored as deltas and
        both big columns byte-transposed: regular series then compress to almost nothing.
        """
        n = len(self.series_ts)
        rows, cols = np.nonzero(self._sid >= 0)
        sid = self._sid[rows, cols]
        st = np.empty(n, np.int64)
        st[sid] = rows
        lens = np.fromiter((a.size for a in self.series_ts), np.int64, n)
        ts = np.concatenate(self.series_ts) if n else np.empty(0, np.int64)
        v = np.concatenate(self.series_v) if n else np.empty(0, np.float64)
        nst = len(self.station_names)
        rules: dict[str, Any] = {}
        for c in self.compiled:
            s = self._state[c.id]
            hits = {}
            for i, node in enumerate(_group_nodes(c)):
                dq = s.group_hits.get(id(node))
                if dq:
                    hits[str(i)] = [[t, hs] for (t, hs, _g) in dq]
            rules[c.id] = {
                "fp": _fingerprint(c),
                "last_outcome": _b(s.last_outcome.ensure(nst)[:nst]),
                "last_eval": _b(s.last_eval.ensure(nst)[:nst]),
                "sticky": _b(s.sticky.ensure(nst)[:nst]),
                "run_start": {str(i): _b(g.ensure(nst)[:nst]) for i, g in s.run_start.items()},
                "group_hits": hits,
            }
        return {
            "stations": list(self.station_names), "metrics": list(self.metric_names),
            "series_station": _b(st), "series_metric": _b(np.asarray(self.series_metric, np.int64)),
            "lens": _b(lens), "ts_delta": _shuffle(np.diff(ts, prepend=np.int64(0))),
            "v": _shuffle(v), "newest": _b(self._newest.ensure(n)[:n]),
            "watermark": int(self._watermark), "rules": rules,
            "stats": [self.stats.readings, self.stats.evaluated, self.stats.late,
                      self.stats.unmatched],
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Load a :meth:`snapshot` into this fresh engine.

        A rule whose definition changed since the snapshot starts with fresh state (its
        first evaluation reports its current outcome); every other rule resumes exactly,
        with its ``for:`` timers, held grades and last outcomes.
        """
        if self.station_names or self.series_ts:
            raise ValueError("Engine.restore needs a fresh engine")
        for name in snap["stations"]:
            self._station(name)
        for name in snap["metrics"]:
            self._metric(name)
        st = _a(snap["series_station"], np.int64)
        m = _a(snap["series_metric"], np.int64)
        lens = _a(snap["lens"], np.int64)
        n = int(st.size)
        self._sid = np.full((max(64, len(self.station_names) * 2), max(8, len(self.metric_names) * 2)),
                            -1, dtype=np.int64)
        self._sid[st, m] = np.arange(n, dtype=np.int64)
        ts = np.cumsum(_unshuffle(snap["ts_delta"], np.int64))
        v = _unshuffle(snap["v"], np.float64)
        bounds = np.cumsum(lens)[:-1]
        self.series_ts = list(np.split(ts, bounds)) if n else []
        self.series_v = list(np.split(v, bounds)) if n else []
        self.series_metric = m.tolist()
        self.series_horizon = [self._horizon_for(s, mm) for s, mm in zip(st.tolist(), m.tolist())]
        self._newest.ensure(n)[:n] = _a(snap["newest"], np.int64)
        self._watermark = int(snap["watermark"])
        (self.stats.readings, self.stats.evaluated, self.stats.late,
         self.stats.unmatched) = snap["stats"]
        nst = len(self.station_names)
        for c in self.compiled:
            saved = snap["rules"].get(c.id)
            if saved is None or saved["fp"] != _fingerprint(c):
                continue
            state = self._state[c.id]
            state.last_outcome.ensure(nst)[:nst] = _a(saved["last_outcome"], np.int64)
            state.last_eval.ensure(nst)[:nst] = _a(saved["last_eval"], np.int64)
            state.sticky.ensure(nst)[:nst] = _a(saved["sticky"], np.int64)
            for i, raw in saved["run_start"].items():
                g = state.run_start[int(i)] = _Grow(_NONE, np.int64)
                g.ensure(nst)[:nst] = _a(raw, np.int64)
            nodes = _group_nodes(c)
            for i, hits in saved["group_hits"].items():
                node = nodes[int(i)]
                groups = self._group(node.by)
                state.group_hits[id(node)] = deque((int(t), int(s), int(groups[s]))
                                                   for t, s in hits)


_BINARY = {
    ">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less,
    "==": np.equal, "!=": np.not_equal, "+": np.add, "-": np.subtract, "*": np.multiply,
    "/": np.divide,
}


def _truth(a: np.ndarray) -> np.ndarray:
    """Booleans stay; numbers are true when non-zero and not NaN."""
    if a.dtype == bool:
        return a
    return np.nan_to_num(a, nan=0.0) != 0


def _field_value(entry: Any | None, name: str) -> float:
    if entry is None:
        return np.nan
    thresholds = getattr(entry, "thresholds", None) or {}
    if name in thresholds:
        return float(thresholds[name])
    value = getattr(entry, name, None)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan


def _group_code(entry: Any | None, name: str, codes: dict[str, int]) -> int:
    if entry is None:
        return -1
    value = getattr(entry, name, None)
    if value in (None, ""):
        return -1
    return codes.setdefault(str(value), len(codes))


# -- snapshot helpers ----------------------------------------------------------------------

def _b(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def _a(raw: bytes, dtype: Any) -> np.ndarray:
    return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).astype(dtype)


def _shuffle(a: np.ndarray) -> bytes:
    """Byte-transposed (all first bytes, then all second bytes, ...): like blosc's shuffle,
    it lets zlib see the slowly changing high bytes of timestamps and floats as runs."""
    raw = np.frombuffer(_b(a), np.uint8)
    return raw.reshape(-1, a.dtype.itemsize).T.tobytes()


def _unshuffle(raw: bytes, dtype: Any) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    b = np.frombuffer(raw, np.uint8).reshape(size, -1).T
    return _a(np.ascontiguousarray(b).tobytes(), dtype)


def _fingerprint(c: CompiledRule) -> int:
    """A rule's definition: state saved under another definition is not reused."""
    return zlib.crc32(c.rule.model_dump_json().encode())


def _group_nodes(c: CompiledRule) -> list[ex.GroupCount]:
    """The rule's group-count nodes in a stable order (their state is keyed by it)."""
    out: list[ex.GroupCount] = []
    seen: set[int] = set()

    def walk(node: object) -> None:
        if isinstance(node, ex.GroupCount) and id(node) not in seen:
            seen.add(id(node))
            out.append(node)
        for child in ex._children(node):
            walk(child)

    for _, check in c.grades:
        walk(check.expr.tree)
    if c.clear is not None:
        walk(c.clear.expr.tree)
    return out
