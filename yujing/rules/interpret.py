"""The expression interpreter: a rule's syntax tree → one numpy array per node, over all
evaluation points (station, time) of a chunk at once.

Window aggregates come from ``windows.py``, station fields and groups from the
registry lookup, local hour and month from ``localtime.py``. Two nodes carry
state or reach outside the rules: ``count_stations`` keeps the recent hits of
its rule (passed in), and ``anomaly`` asks a model through the scorer the engine
was given (the rules never import the models package).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from yujing.rules import localtime
from yujing.rules import tree as ex
from yujing.rules import trend as tr
from yujing.rules import windows as wn
from yujing.rules.arrays import truth
from yujing.rules.forecast import ForecastTable
from yujing.rules.indices import beaufort, fire_index
from yujing.rules.lookup import StationLookup
from yujing.rules.series import SeriesStore

BINARY = {
    ">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less,
    "==": np.equal, "!=": np.not_equal, "+": np.add, "-": np.subtract, "*": np.multiply,
    "/": np.divide,
}
COMPARE = frozenset((">=", ">", "<=", "<", "==", "!="))


class Scorer(Protocol):
    """Anomaly scores in [0, 1] of one station's sorted series, reading i using only
    readings <= i (``yujing.models.scoring.score_series`` is one). A scorer that also has
    ``many`` and ``stations`` (models/stream.py) is asked once for all stations of a chunk."""

    def __call__(self, model: Any, ts: np.ndarray, values: np.ndarray,
                 station: str) -> np.ndarray: ...


def score_with_model(model: Any, ts: np.ndarray, values: np.ndarray, station: str) -> np.ndarray:
    """The default scorer: the detector contract itself (a fresh state per station)."""
    return model.score(ts, values, model.new_state(station))


class Interpreter:
    """Evaluates trees for one engine; ``models`` (``get(name)``) may be swapped."""

    def __init__(self, store: SeriesStore, lookup: StationLookup, lateness_ms: int,
                 models: Any | None, scorer: Scorer, tz: str) -> None:
        self.store, self.lookup = store, lookup
        self.lateness_ms = lateness_ms
        self.models, self.scorer, self.tz = models, scorer, tz
        self.forecasts = ForecastTable()  # the engine's; sum_ahead()/max_ahead() read it
        self.same: dict[int, int] = {}  # id(node) -> id of an equal node computed in its stead

    def evaluator(self, flat: wn.Flat, pst: np.ndarray, pt: np.ndarray,
                  group_hits: dict[int, deque]) -> Callable[[object], np.ndarray]:
        """node → its array at the points (memoised: each node is computed once)."""
        return Evaluation(self, flat, pst, pt, group_hits)

    def _node(self, node: object, flat: wn.Flat, pst: np.ndarray, pt: np.ndarray,
              group_hits: dict[int, deque], ev: Callable[[object], np.ndarray]) -> np.ndarray:
        if type(node) is ex.Binary:  # the commonest nodes first: this runs per node and chunk
            return self._binary(node, ev)
        if type(node) is ex.Agg:
            if not isinstance(ev, Evaluation):
                return wn.aggregate(flat, node.fn, self._sid(ev, pst, node.metric), pt,
                                    node.window_ms)
            key = ("bounds", node.metric, node.window_ms)  # shared by the rule's aggregates
            if key not in ev.memo:
                ev.memo[key] = flat.bounds(self._sid(ev, pst, node.metric), pt, node.window_ms)
            return wn.of_bounds(flat, node.fn, *ev.memo[key], pt)
        if isinstance(node, ex.Num):
            return np.full(pt.shape, node.value)
        if isinstance(node, ex.StationField):
            return self.lookup.field(node.name)[pst]
        if isinstance(node, ex.SeriesFn):
            sid = self._sid(ev, pst, node.metric)
            if node.fn == "jump":
                return wn.jump(flat, sid, pt)
            return self.store.days_since(sid, pt, node.threshold, node.horizon_ms)
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
        raise TypeError(f"unknown expression node {node!r}")

    def _sid(self, ev: Callable[[object], np.ndarray], pst: np.ndarray, metric: str
             ) -> np.ndarray:
        """The series ids of ``metric`` at the points, looked up once per evaluation."""
        if not isinstance(ev, Evaluation):
            return self.store.lookup(pst, metric)
        key = ("sid", metric)
        if key not in ev.memo:
            ev.memo[key] = self.store.lookup(pst, metric)
        return ev.memo[key]

    @staticmethod
    def _binary(node: ex.Binary, ev: Callable[[object], np.ndarray]) -> np.ndarray:
        a, b = ev(node.left), ev(node.right)
        if node.op == "and":
            return truth(a) & truth(b)
        if node.op == "or":
            return truth(a) | truth(b)
        if node.op in COMPARE:  # NaN compares false without a warning: no errstate needed
            return BINARY[node.op](a, b)
        with np.errstate(invalid="ignore", divide="ignore"):
            return BINARY[node.op](a, b)

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
            memo[key] = tr.fit(flat, self._sid(ev, pst, node.metric), pt, node.window_ms,
                               reach, node.falling)
        if node.fn == "eta":
            return tr.eta(memo[key], threshold, node.falling)
        return tr.project(memo[key], node.horizon_ms)

    def _anomaly(self, node: ex.Anomaly, flat: wn.Flat, pst: np.ndarray, pt: np.ndarray
                 ) -> np.ndarray:
        """The model's score for each point's newest reading of the model's metric.

        The scorer gets each station's retained series (scores use only the past and the
        engine keeps the readings a model looks back on), so the result does not depend
        on how readings were batched; the worker's scorer (models/stream.py) scores only
        the readings it has not scored yet.
        """
        out = np.full(pt.size, np.nan)
        model = self.models.get(node.model) if self.models is not None else None
        if model is None or not getattr(model, "metric", None):
            return out
        if getattr(model, "group_level", False):
            return self._group_anomaly(model, pst, pt)
        if getattr(model, "station_level", False):
            return self._station_anomaly(model, flat, pst, pt)
        sid = self.store.lookup(pst, model.metric)
        if hasattr(self.scorer, "many"):  # every station in one call (models/stream.py)
            return self._anomaly_together(model, flat, sid, pst, pt)
        for s in np.unique(sid[sid >= 0]).tolist():
            a, b = np.searchsorted(flat.sid, [s, s + 1])
            if b <= a:
                continue
            seg_ts, seg_v = flat.ts[a:b], flat.v[a:b]
            sel = np.flatnonzero(sid == s)
            station = self.store.station_names[int(pst[sel[0]])]
            scores = self.scorer(model, seg_ts, seg_v, station)
            i = np.searchsorted(seg_ts, pt[sel], side="right") - 1
            out[sel] = np.where(i >= 0, scores[np.clip(i, 0, None)], np.nan)
        return out

    def _anomaly_together(self, model: Any, flat: wn.Flat, sid: np.ndarray, pst: np.ndarray,
                          pt: np.ndarray) -> np.ndarray:
        """``_anomaly`` with one scorer call for the series of all the points' stations
        (laid end to end); each point reads its series' newest score at or before it."""
        out = np.full(pt.size, np.nan)
        have = sid >= 0
        series, first = np.unique(sid[have], return_index=True)
        a, b = np.searchsorted(flat.sid, series), np.searchsorted(flat.sid, series + 1)
        keep = b > a
        series, first, a, n = series[keep], first[keep], a[keep], (b - a)[keep]
        if series.size == 0:
            return out
        bounds = np.concatenate(([0], np.cumsum(n)))
        pos = np.repeat(a - bounds[:-1], n) + np.arange(int(bounds[-1]))
        names = [self.store.station_names[s] for s in pst[have][first].tolist()]
        scores = self.scorer.many(model, names, flat.ts[pos], flat.v[pos], bounds)
        k = np.clip(np.searchsorted(series, sid), 0, series.size - 1)
        i = np.searchsorted(flat.key, wn.keys(sid, pt), side="right") - 1
        ok = have & (series[k] == sid) & (i >= a[k])
        out[ok] = scores[i[ok] - a[k[ok]] + bounds[k[ok]]]
        return out

    def _station_anomaly(self, model: Any, flat: wn.Flat, pst: np.ndarray, pt: np.ndarray
                         ) -> np.ndarray:
        """A station model (several metrics): the score of each point's newest station row,
        from the station's retained readings of every metric the model names."""
        if hasattr(self.scorer, "stations"):  # every station in one call (models/stream.py)
            return self._stations_together(model, flat, pst, pt)
        out = np.full(pt.size, np.nan)
        sids = [self.store.lookup(pst, m) for m in model.metrics]
        for s in np.unique(pst).tolist():
            sel = np.flatnonzero(pst == s)
            series = {}
            for metric, sid in zip(model.metrics, sids):
                a, b = np.searchsorted(flat.sid, [sid[sel[0]], sid[sel[0]] + 1])
                if sid[sel[0]] >= 0 and b > a:
                    series[metric] = (flat.ts[a:b], flat.v[a:b])
            if series:
                name = self.store.station_names[s]
                rows = getattr(self.scorer, "station", None)  # a streaming scorer keeps state
                row_ts, scores = rows(model, series, name) if rows is not None else \
                    model.score_station(series, model.new_state(name))
                i = np.searchsorted(row_ts, pt[sel], side="right") - 1
                out[sel] = np.where(i >= 0, scores[np.clip(i, 0, None)], np.nan) if row_ts.size else np.nan
        return out

    def _stations_together(self, model: Any, flat: wn.Flat, pst: np.ndarray, pt: np.ndarray
                           ) -> np.ndarray:
        """``_station_anomaly`` with one scorer call: segment ``k * m + j`` is station k's
        retained readings of the model's metric j; each point reads its station's newest
        row at or before it."""
        out = np.full(pt.size, np.nan)
        st = np.unique(pst)
        sid = np.stack([self.store.lookup(st, m) for m in model.metrics], axis=1)
        a = np.searchsorted(flat.sid, sid)
        n = np.where(sid >= 0, np.searchsorted(flat.sid, sid + 1) - a, 0)
        keep = n.sum(axis=1) > 0
        st, a, n = st[keep], a[keep].ravel(), n[keep].ravel()
        if st.size == 0:
            return out
        bounds = np.concatenate(([0], np.cumsum(n)))
        pos = np.repeat(a - bounds[:-1], n) + np.arange(int(bounds[-1]))
        names = [self.store.station_names[s] for s in st.tolist()]
        rk, rt, scores = self.scorer.stations(model, names, flat.ts[pos], flat.v[pos], bounds)
        if rk.size == 0:
            return out
        k = np.clip(np.searchsorted(st, pst), 0, st.size - 1)
        i = np.searchsorted(wn.keys(rk, rt), wn.keys(k, pt), side="right") - 1
        ic = np.clip(i, 0, None)
        ok = (st[k] == pst) & (i >= 0) & (rk[ic] == k)
        out[ok] = scores[ic[ok]]
        return out

    def _group_anomaly(self, model: Any, pst: np.ndarray, pt: np.ndarray) -> np.ndarray:
        """A group model (several stations, e.g. neighbours): the score of each point's
        station at its newest row at or before the point. The scorer closes the group's
        rows as their readings come in (models/group_stream.py), from the retained
        readings of the group's stations this engine holds (their partition key puts them
        in one worker: ``Registry.partition_keys``). Without a scorer that keeps a group's
        rows (``group``) there is no score."""
        out = np.full(pt.size, np.nan)
        group = getattr(self.scorer, "group", None)
        if group is None:
            return out
        index = self.store.station_index
        st = np.array([index.get(s, -1) for s in model.stations], dtype=np.int64)
        sids = {m: np.where(st >= 0, self.store.lookup(np.maximum(st, 0), m), -1).tolist()
                for m in model.metrics}
        series: dict[str, dict[str, Any]] = {}
        for m, ids in sids.items():
            for station, sid in zip(model.stations, ids):
                if sid >= 0:
                    series.setdefault(station, {})[m] = self.store.series(sid)
        rows = group(model, series)
        names = self.store.station_names
        for s in np.unique(pst).tolist():
            row_ts, scores = rows.get(names[s], (None, None))
            if row_ts is None or row_ts.size == 0:
                continue
            sel = np.flatnonzero(pst == s)
            i = np.searchsorted(row_ts, pt[sel], side="right") - 1
            out[sel] = np.where(i >= 0, scores[np.clip(i, 0, None)], np.nan)
        return out

    def _group_count(self, node: ex.GroupCount, hits: deque, cond: np.ndarray,
                     pst: np.ndarray, pt: np.ndarray) -> np.ndarray:
        """Distinct stations of the same group whose condition held within the window.

        Detections are rare, so this walks the true points in time order.
        """
        groups = self.lookup.group(node.by)
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


class Evaluation:
    """One chunk's evaluation: node → its array at the points, each node computed once.

    An object rather than a recursive closure: a closure that calls itself is a reference
    cycle, so every chunk's merged readings and intermediate arrays waited for the cyclic
    garbage collector; in a worker that let hundreds of MB of dead arrays pile up between
    its full collections.
    """

    def __init__(self, interp: Interpreter, flat: wn.Flat, pst: np.ndarray, pt: np.ndarray,
                 group_hits: dict[int, deque]) -> None:
        self.interp, self.flat, self.pst, self.pt, self.group_hits = interp, flat, pst, pt, group_hits
        self.memo: dict[object, Any] = {}  # node id → array; a trend's key → its fit

    def __call__(self, node: object) -> np.ndarray:
        key = self.interp.same.get(id(node), id(node))
        out = self.memo.get(key)
        if out is None:
            out = self.memo[key] = self.interp._node(node, self.flat, self.pst, self.pt,
                                                     self.group_hits, self)
        return out
