"""The rule evaluator: columns of readings in, findings out.

The worker and the backtest call the same ``Engine.process``. Each reading is
an evaluation point: for every rule on its metric, the grade whose condition
holds at that reading's event time is computed as arrays, and a Finding is
emitted only where the graded outcome changes, so the output does not depend on
how readings were split into envelopes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..domain import Finding, Grade
from ..durations import format_duration
from .schema import Condition, Rule
from .windows import aggregate, compare, merge

# Outcome codes per evaluation point: grade * 2 + clear flag.
_NO_OUTCOME = -1


@dataclass
class CompiledRule:
    rule: Rule
    grades: list[tuple[Grade, Condition]]
    clear: Condition
    stations: frozenset[str] | None
    horizon_ms: int

    @classmethod
    def build(cls, rule: Rule) -> "CompiledRule":
        grades = [(Grade.parse(name), cond) for name, cond in rule.grades.items()]
        horizon = max([c.window_ms for _, c in grades] + [rule.clear.window_ms])
        return cls(rule, grades, rule.clear,
                   frozenset(rule.stations) if rule.stations else None, horizon)

    def applies_to(self, station: str) -> bool:
        return self.stations is None or station in self.stations


@dataclass
class Series:
    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    v: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))


@dataclass
class Stats:
    readings: int = 0
    evaluated: int = 0
    late: int = 0
    unmatched: int = 0


class Engine:
    """Window state for every (station, metric) and the rules that read it.

    State is keyed by the readings' own timestamps, so replaying a reading
    changes nothing. Readings older than ``lateness_ms`` behind the newest
    reading of their series that arrived before them are counted in
    ``stats.late`` and returned by ``process`` for dead-lettering, never
    silently merged. A reading at or before the newest evaluated event time
    (out of order, or replayed) re-evaluates that newest time instead of its
    own, so a replay finds nothing new and a late reading that tips a window
    over a threshold is reported at once.
    """

    def __init__(self, rules: list[Rule], lateness_ms: int = 3_600_000) -> None:
        self.rules = {r.id: CompiledRule.build(r) for r in rules if r.enabled}
        self.by_metric: dict[str, list[CompiledRule]] = {}
        for cr in self.rules.values():
            self.by_metric.setdefault(cr.rule.metric, []).append(cr)
        self.lateness_ms = lateness_ms
        self.series: dict[tuple[str, str], Series] = {}
        # Per (rule id, station): the outcome at the newest evaluated event time, and that time.
        self.last_outcome: dict[tuple[str, str], int] = {}
        self.last_eval_ts: dict[tuple[str, str], int] = {}
        self.stats = Stats()

    def horizon_ms(self, metric: str) -> int:
        rules = self.by_metric.get(metric, [])
        return max((r.horizon_ms for r in rules), default=0) + self.lateness_ms

    def process(self, stations: list[str], si: np.ndarray, metrics: list[str], mi: np.ndarray,
                ts: np.ndarray, v: np.ndarray) -> tuple[list[Finding], list[int]]:
        """Evaluate one envelope (dictionary-encoded columns).

        Returns the findings in event-time order and the indices of readings
        rejected as too late.
        """
        n = ts.size
        self.stats.readings += n
        if n == 0:
            return [], []
        key = si.astype(np.int64) * max(len(metrics), 1) + mi.astype(np.int64)
        # Stable: within a series the readings keep their arrival order, so lateness is
        # judged against what had arrived before each reading (as if they came one by one)
        # and, for a repeated timestamp, the last one to arrive wins.
        order = np.argsort(key, kind="stable")
        key_sorted = key[order]
        starts = np.flatnonzero(np.concatenate(([True], key_sorted[1:] != key_sorted[:-1])))
        ends = np.append(starts[1:], n)
        findings: list[Finding] = []
        late: list[int] = []
        for a, b in zip(starts.tolist(), ends.tolist()):
            idx = order[a:b]
            first = idx[0]
            metric = metrics[int(mi[first])]
            rules = self.by_metric.get(metric)
            if not rules:
                self.stats.unmatched += b - a
                continue
            station = stations[int(si[first])]
            findings.extend(self._series(station, metric, rules, ts[idx], v[idx], idx, late))
        # Event time first; rule and station make the order independent of how the
        # envelope's dictionaries happened to be built.
        findings.sort(key=lambda f: (f.ts, f.rule, f.station))
        late.sort()
        return findings, late

    def _series(self, station: str, metric: str, rules: list[CompiledRule], new_ts: np.ndarray,
                new_v: np.ndarray, idx: np.ndarray, late: list[int]) -> list[Finding]:
        """Merge one series' readings (in arrival order) and evaluate its rules."""
        s = self.series.get((station, metric))
        if s is None:
            s = self.series[(station, metric)] = Series()
        new_ts = new_ts.astype(np.int64, copy=False)
        # Newest event time seen before (and including) each reading, in arrival order:
        # a reading is late only against what came before it, never against readings
        # that arrived after it in the same envelope.
        seen = np.maximum.accumulate(new_ts)
        if s.ts.size:
            seen = np.maximum(seen, s.ts[-1])
        ok = new_ts >= seen - self.lateness_ms
        if not ok.all():
            bad = idx[~ok]
            late.extend(bad.tolist())
            self.stats.late += bad.size
            new_ts, new_v = new_ts[ok], new_v[ok]
            if new_ts.size == 0:
                return []
        s.ts, s.v = merge(s.ts, s.v, new_ts, new_v)
        at = np.unique(new_ts)
        self.stats.evaluated += at.size
        out: list[Finding] = []
        for cr in rules:
            if cr.applies_to(station):
                out.extend(self._evaluate(cr, station, s, at))
        # Trim only after evaluating: every evaluation point of this envelope needs its
        # whole window, and a later reading within lateness still finds its window here.
        keep_from = np.searchsorted(s.ts, int(s.ts[-1]) - self.horizon_ms(metric), side="right")
        if keep_from:
            s.ts, s.v = s.ts[keep_from:], s.v[keep_from:]
        return out

    def _evaluate(self, cr: CompiledRule, station: str, s: Series, at: np.ndarray) -> list[Finding]:
        state_key = (cr.rule.id, station)
        last_ts = self.last_eval_ts.get(state_key)
        if last_ts is not None:
            # Points at or before the newest evaluated time were judged already; a replayed
            # or out-of-order reading instead re-evaluates that newest time, whose window
            # it may have changed. A replay changes nothing there, so it finds nothing.
            fresh = at[at > last_ts]
            at = fresh if fresh.size == at.size else np.concatenate(
                (np.array([last_ts], dtype=np.int64), fresh))
        cache: dict[tuple[int, str], np.ndarray] = {}

        def agg(c: Condition) -> np.ndarray:
            k = (c.window_ms, c.agg)
            if k not in cache:
                cache[k] = aggregate(s.ts, s.v, at, c.window_ms, c.agg)
            return cache[k]

        grade = np.zeros(at.size, dtype=np.int64)
        for g, cond in cr.grades:  # ascending severity: a later grade overrides
            hit = compare(agg(cond), cond.op, cond.value)
            grade[hit & (int(g) > grade)] = int(g)
        clear = compare(agg(cr.clear), cr.clear.op, cr.clear.value) & (grade == 0)
        outcome = grade * 2 + clear
        prev = self.last_outcome.get(state_key, _NO_OUTCOME)
        changed = np.flatnonzero(outcome != np.concatenate(([prev], outcome[:-1])))
        if outcome.size:
            self.last_outcome[state_key] = int(outcome[-1])
            self.last_eval_ts[state_key] = int(at[-1])
        out = []
        for i in changed.tolist():
            g = Grade(int(grade[i]))
            if g == Grade.NONE and not clear[i]:
                continue  # between grade and clear: nothing to say (hysteresis band)
            cond = dict(cr.grades)[g] if g else cr.clear
            value = float(agg(cond)[i])
            window = format_duration(cond.window_ms)
            label = g.label if g else "clear"
            reason = f"{cond.agg}({window}) = {value:g} {cond.op} {cond.value:g} ({label})"
            out.append(Finding(cr.rule.id, station, int(at[i]), g, bool(clear[i]), value,
                               window, reason))
        return out
