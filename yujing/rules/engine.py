"""The rule evaluator: columns of readings in, findings out, as array work.

The worker (one envelope at a time) and the backtest (large chunks) call the
same ``Engine.process``. Every reading is an evaluation point for the rules
that read its metric at its station; the graded outcome is computed for all
points of all stations at once, and a Finding is emitted only where a
station's outcome changes, so the result does not depend on how the readings
were split into envelopes.

The engine only coordinates; each job has its own module:

- ``series.py``: the series store (ids, lateness, merge, trimming, its snapshot), each
  series in an append-only ``buffer.py``; ``reach.py``: how far back the rules read
  each metric, so a chunk lays out only the slice of each series its windows need;
- ``lookup.py``: what the rules read from the station registry;
- ``points.py``: where each rule is judged (readings, the ``evaluate_every`` grid);
- ``windows.py``: the window aggregates;
- ``interpret.py``: expression trees → arrays;
- ``transitions.py``: ``for:``, held grades and clears → findings.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from yujing.domain import Finding
from yujing.rules import points as pts
from yujing.rules import reach
from yujing.rules import transitions as tr
from yujing.rules import windows as wn
from yujing.rules.arrays import truth
from yujing.rules.compiled import CompiledRule, compile_rule
from yujing.rules.forecast import EXPIRY_STEP_MS, ForecastTable
from yujing.rules.interpret import Interpreter, Scorer, score_with_model
from yujing.rules.localtime import DEFAULT_ZONE, zone
from yujing.rules.lookup import StationLookup
from yujing.rules.schema import Rule
from yujing.rules.series import SeriesStore, SeriesView
from yujing.rules.tree import GroupCount, children, group_nodes
from yujing.rules.windows import Flat


@dataclass
class Stats:
    readings: int = 0
    evaluated: int = 0
    late: int = 0
    unmatched: int = 0


class Engine:
    def __init__(self, rules: list[Rule], lateness_ms: int = 3_600_000,
                 registry: Any | None = None, models: Any | None = None, *,
                 scorer: Scorer | None = None, tz: str = DEFAULT_ZONE) -> None:
        """``models`` gives anomaly models by name (``get(name)`` → detector or None),
        e.g. a :class:`yujing.models.registry.ModelRegistry` view; rules that name a
        model it lacks never fire (``yujing rules check --models`` refuses them).
        ``scorer`` scores a series with a model (the pipeline passes
        ``yujing.models.scoring.score_series``; without one the detector scores itself).
        ``tz`` is the IANA time zone of ``hour()`` and ``month()`` in rules."""
        self.compiled = [compile_rule(r) for r in rules if r.enabled]
        self.rules = {c.id: c for c in self.compiled}
        if len(self.rules) != len(self.compiled):
            dup = sorted({c.id for c in self.compiled if sum(x.id == c.id for x in self.compiled) > 1})
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(dup)}")
        zone(tz)  # an unknown zone fails here, not at the first hour()
        self.lateness_ms = lateness_ms
        self.models = models
        self.stats = Stats()
        self.store = SeriesStore(lateness_ms, self._longest_window)
        self.lookup = StationLookup(registry, self.store.station_names)
        self.interpreter = Interpreter(self.store, self.lookup, lateness_ms, models,
                                       scorer or score_with_model, tz)
        self._resolve_models()
        self._horizon_by_metric: dict[str, int] = {}
        for c in self.compiled:
            for m in c.metrics:
                self._horizon_by_metric[m] = max(self._horizon_by_metric.get(m, 0), c.horizon_ms)
        self._metric_used = np.zeros(0, dtype=bool)
        self._reach = self._reaches()
        self.interpreter.same = _equal_nodes(self.compiled)
        self._state = {c.id: tr.RuleState() for c in self.compiled}
        self.stream_ms = 0  # newest event time of any reading: "now" when a forecast arrives

    def _resolve_models(self) -> None:
        """Add each named model's metric to its rules, and keep enough readings for it."""
        keep = self.store.keep_points
        for c in self.compiled:
            for name in c.models:
                model = self.models.get(name) if self.models is not None else None
                metric = getattr(model, "metric", None)
                # a station model (yujing.models.station) reads several metrics
                for m in (getattr(model, "metrics", None) or [metric]) if metric else []:
                    c.metrics.add(m)
                    keep[m] = max(keep.get(m, 1), int(getattr(model, "history", 0)) + 1,
                                  int(getattr(model, "lags", 0)) + 1)

    def set_models(self, models: Any | None) -> None:
        """Use reloaded anomaly models (new versions from the model registry)."""
        self.models = self.interpreter.models = models
        self._resolve_models()
        for c in self.compiled:
            for m in c.metrics:
                self._horizon_by_metric[m] = max(self._horizon_by_metric.get(m, 0), c.horizon_ms)
                if m in self.store.metric_index:
                    self._metric_used[self.store.metric_index[m]] = True
        self._reach = self._reaches()
        self.store.recompute_horizons()

    def _reaches(self) -> dict[str, reach.Reach]:
        """How far back each metric is read (the slice of its series a chunk lays out);
        the metrics anomaly models read are read whole."""
        trees = [t for c in self.compiled for t in _trees(c)]
        whole = set()
        for c in self.compiled:
            whole.update(c.metrics - reach.of_trees(_trees(c), set()).keys())  # read otherwise
            for name in c.models:
                model = self.models.get(name) if self.models is not None else None
                metric = getattr(model, "metric", None)
                whole.update((getattr(model, "metrics", None) or [metric]) if metric else [])
        return reach.of_trees(trees, whole)

    def _groups(self, c: CompiledRule) -> list[list[str]]:
        """The station groups of the group models (neighbours) rule ``c`` reads."""
        models = [self.models.get(name) if self.models is not None else None for name in c.models]
        return [list(m.stations) for m in models if getattr(m, "group_level", False)]

    def set_registry(self, registry: Any | None) -> None:
        """Use a reloaded station registry: selectors and station fields are looked up again."""
        self.lookup.reset(registry)
        self.store.recompute_horizons()

    # -- identities and views ---------------------------------------------------------------

    @property
    def registry(self) -> Any | None:
        return self.lookup.registry

    @property
    def station_index(self) -> dict[str, int]:
        return self.store.station_index

    @property
    def station_names(self) -> list[str]:
        return self.store.station_names

    @property
    def series_ts(self) -> list[np.ndarray]:
        return self.store.ts

    @property
    def series(self) -> dict[tuple[str, str], SeriesView]:
        """(station, metric) → the retained window of that series (for inspection and tests)."""
        return self.store.views()

    def horizon_ms(self, metric: str) -> int:
        return self._horizon_by_metric.get(metric, 0) + self.lateness_ms

    def _longest_window(self, station: str, metric: str) -> int:
        """How far back one series must reach: the longest window of the rules that read
        this metric at this station (a 10-day dry-spell rule on forest stations does not make
        every rain gauge keep 10 days)."""
        entry = self.lookup.entry(station)
        longest = 0
        for c in self.compiled:
            if metric in c.metrics and c.horizon_ms > longest and c.eligible(station, entry):
                longest = c.horizon_ms
        return longest

    def _station(self, name: str) -> int:
        i, new = self.store.station(name)
        if new:
            self.lookup.add(i)
        return i

    def _metric(self, name: str) -> int:
        i, new = self.store.metric(name)
        if new:
            self._metric_used = np.append(self._metric_used, name in self._horizon_by_metric)
        return i

    # -- the chunk ------------------------------------------------------------------------

    def process(self, stations: list[str], si: np.ndarray, metrics: list[str], mi: np.ndarray,
                ts: np.ndarray, v: np.ndarray, forecasts: Any | None = None
                ) -> tuple[list[Finding], list[int]]:
        """Evaluate one envelope or chunk (dictionary-encoded columns, arrival order).

        ``forecasts`` are the envelope's forecast rows (``Columns.split``): they go to the
        forecast table, and each station they name is judged by the rules that read them
        (``_take_forecasts``). Returns the findings in (event time, rule, station) order
        and the indices of readings rejected as too late.
        """
        n = int(ts.size)
        self.stats.readings += n
        fpoints = self._take_forecasts(forecasts) if forecasts is not None else {}
        if n:  # after the forecasts: they look ahead from the stream time they arrived at
            self.stream_ms = max(self.stream_ms, int(ts.max()))
        if n == 0 and not fpoints:
            return [], []
        st_map = np.fromiter((self._station(s) for s in stations), np.int64, len(stations))
        m_map = np.fromiter((self._metric(x) for x in metrics), np.int64, len(metrics))
        st_all, m_all = st_map[si], m_map[mi]
        used = self._metric_used[m_all]
        self.stats.unmatched += int(n - used.sum())
        idx = np.flatnonzero(used)
        st, m = st_all[idx], m_all[idx]
        t = ts[idx].astype(np.int64)
        val = v[idx].astype(np.float64)
        sid = self.store.ids(st, m)
        ok = self.store.on_time(sid, t)
        late = idx[~ok].tolist()
        self.stats.late += len(late)
        keep = np.flatnonzero(ok)
        if keep.size == 0 and not fpoints:
            return [], late
        st, m, t, val, sid = st[keep], m[keep], t[keep], val[keep], sid[keep]

        nst = len(self.store.station_names)
        points = pts.of_readings(self.compiled, self.store, self.lookup, st, m, t)
        _merge_points(points, fpoints)
        _merge_points(points, pts.of_groups(self.compiled, self._groups, self.store, self.lookup,
                                            points))
        if t.size:
            self.store.watermark = max(self.store.watermark, int(t.max()))
        pts.add_ticks(self.compiled, self._state, points, self.store.watermark, nst)
        touched = self.store.insert(sid, t, val)
        needed, t_min = pts.series_read(points, self.store, nst)
        flat = self.store.flat(needed, t_min, self._reach)

        findings: list[Finding] = []
        for c, (pst, pt) in points.items():
            findings.extend(self._evaluate(c, flat, pst, pt))
        self.store.trim(touched)
        self.forecasts.expire(self.store.watermark - self.lateness_ms, EXPIRY_STEP_MS)
        findings.sort(key=lambda f: (f.ts, f.rule, f.station))
        return findings, late

    @property
    def forecasts(self) -> ForecastTable:
        return self.interpreter.forecasts

    def _take_forecasts(self, fc: Any) -> pts.Points:
        """Put forecast rows in the table; the points (station, now) where the rules that
        read them judge their stations. "now" is the stream's event time (the newest
        reading of the partition, whatever its metric, before this envelope), or the issue
        time when that is later: a forecast judged alone, before any reading, looks ahead
        from when it was issued. (Not the envelope's own readings: a backtest chunk of
        hours would otherwise judge a forecast at the end of the chunk.)"""
        wanted = set().union(*(c.forecasts for c in self.compiled))
        if not len(fc) or not wanted:
            return {}
        self.forecasts.add_columns(fc.stations, fc.si, fc.metrics, fc.mi, fc.issued, fc.ts,
                                   fc.val, wanted)
        out: pts.Points = {}
        for c in self.compiled:
            rows = np.flatnonzero(np.isin(np.asarray(fc.metrics, dtype=object)[fc.mi],
                                          list(c.forecasts))) if c.forecasts else np.empty(0, int)
            if rows.size == 0:
                continue
            st = np.fromiter((self._station(fc.stations[int(i)]) for i in fc.si[rows]), np.int64,
                             rows.size)
            now = np.maximum(fc.issued[rows].astype(np.int64), self.stream_ms)
            pick = self.lookup.selected(c, st)
            if pick.any():
                out[c] = wn.split_keys(np.unique(wn.keys(st[pick], now[pick])))
        return out

    def _evaluate(self, c: CompiledRule, flat: Flat, pst: np.ndarray, pt: np.ndarray
                  ) -> list[Finding]:
        state = self._state[c.id]
        nst = len(self.store.station_names)
        pst, pt = pts.rejudge_stale(pst, pt, state.last_eval.ensure(nst))
        self.stats.evaluated += int(pt.size)
        ev = self.interpreter.evaluator(flat, pst, pt, state.group_hits)
        conds = [truth(ev(check.expr.tree)) for _, check in c.grades]
        clear = truth(ev(c.clear.expr.tree)) if c.clear is not None else None
        judged = tr.judge(c, state, conds, clear, pst, pt, nst)
        return tr.findings(c, judged, pst, pt, self.store.station_names, ev)

    def forget_outcome(self, rule_id: str, station: str) -> None:
        """Report the rule's next judgement of ``station`` whatever it is: the pipeline held
        back a finding (a silent station's window emptying), so it must not count as said."""
        nst = len(self.store.station_names)
        if rule_id in self._state and station in self.store.station_names:
            i = self.store.station_names.index(station)
            self._state[rule_id].last_outcome.ensure(nst)[i] = tr.NO_OUTCOME

    # -- durability -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything ``process`` carries from one chunk to the next, as plain values and
        little-endian array bytes, for :meth:`restore` in a fresh engine after a restart.

        Caches derived from the rules and the registry (eligibility, station fields, group
        codes, horizons) are left out: the restored engine rebuilds them from its own rules
        and registry, so a changed registry is honoured.
        """
        nst = len(self.store.station_names)
        snap = self.store.snapshot()
        snap["rules"] = {c.id: {"fp": _fingerprint(c),
                                **self._state[c.id].snapshot(nst, _group_nodes(c))}
                         for c in self.compiled}
        snap["forecasts"] = self.forecasts.snapshot()
        snap["stream_ms"] = self.stream_ms
        snap["stats"] = [self.stats.readings, self.stats.evaluated, self.stats.late,
                         self.stats.unmatched]
        scorer = self.interpreter.scorer
        if hasattr(scorer, "snapshot"):  # anomaly models' streaming state (models/stream.py)
            snap["anomaly"] = scorer.snapshot(self.store.window)  # its rings: the window
        return snap

    def restore(self, snap: dict[str, Any]) -> None:
        """Load a :meth:`snapshot` into this fresh engine.

        A rule whose definition changed since the snapshot starts with fresh state (its
        first evaluation reports its current outcome); every other rule resumes exactly,
        with its ``for:`` timers, held grades and last outcomes.
        """
        if self.store.station_names or self.store.ts:
            raise ValueError("Engine.restore needs a fresh engine")
        for name in snap["stations"]:
            self._station(name)
        for name in snap["metrics"]:
            self._metric(name)
        self.store.restore(snap)
        self.forecasts.restore(snap.get("forecasts"))  # both absent before forecasts
        self.stream_ms = int(snap.get("stream_ms", 0))
        (self.stats.readings, self.stats.evaluated, self.stats.late,
         self.stats.unmatched) = snap["stats"]
        if hasattr(self.interpreter.scorer, "restore"):  # absent before issue 16: rebuilt
            self.interpreter.scorer.restore(snap.get("anomaly"), self.store.window)
        nst = len(self.store.station_names)
        for c in self.compiled:
            saved = snap["rules"].get(c.id)
            if saved is None or saved["fp"] != _fingerprint(c):
                continue
            self._state[c.id].restore(saved, nst, _group_nodes(c), self.lookup.group)


def _merge_points(points: pts.Points, more: pts.Points) -> None:
    """Add ``more`` points to ``points`` (each rule's points stay sorted and unique)."""
    for c, (pst, pt) in more.items():
        if c in points:
            old = points[c]
            pst, pt = wn.split_keys(np.unique(np.concatenate((wn.keys(*old), wn.keys(pst, pt)))))
        points[c] = (pst, pt)


def _fingerprint(c: CompiledRule) -> int:
    """A rule's definition: state saved under another definition is not reused. The message
    template is left out (as if unset, so rules without one keep the fingerprints they
    always had): rewording a message must not reset a rule's timers and grades."""
    return zlib.crc32(c.rule.model_copy(update={"message": None}).model_dump_json().encode())


def _trees(c: CompiledRule) -> list[object]:
    """The rule's expression trees: its grades', then its clear condition's."""
    trees = [check.expr.tree for _, check in c.grades]
    return trees + ([c.clear.expr.tree] if c.clear is not None else [])


def _equal_nodes(compiled: list[CompiledRule]) -> dict[int, int]:
    """id(node) -> id of the first equal node of the same rule: a grade and its clear often
    read the same window (``sum(rain_mm, 1h) >= 50`` ... ``sum(rain_mm, 1h) < 10``), which is
    then computed once per chunk. ``count_stations`` keeps state per node, so it, and the
    nodes above it, are each computed themselves; ``anomaly`` keeps its state per model and
    station (models/stream.py), so a grade and its clear asking the same model share one
    computation."""
    out: dict[int, int] = {}
    for c in compiled:
        first: dict[object, int] = {}  # per rule: node -> id of the first equal one
        for t in _trees(c):
            _intern(t, first, out)
    return out


def _intern(node: object, first: dict[object, int], out: dict[int, int]) -> bool:
    """Map the stateless nodes of ``node``'s tree to their first equal node; True if the
    tree holds a node with state."""
    stateful = isinstance(node, GroupCount)
    for child in children(node):
        stateful = _intern(child, first, out) or stateful
    if not stateful:
        out[id(node)] = first.setdefault(node, id(node))
    return stateful


def _group_nodes(c: CompiledRule) -> list[GroupCount]:
    """The rule's group-count nodes in a stable order (their state is keyed by it)."""
    return group_nodes(_trees(c))
