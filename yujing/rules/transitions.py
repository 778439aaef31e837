"""From conditions to findings: ``for:`` hold times, held grades, hysteresis and the
points where a station's outcome changes. Pure: arrays and carried state in,
arrays and findings out.

Points come sorted by (station, time). Each check's condition (one boolean per
point) becomes "held" once it has been true for the check's ``for:`` time; the
grade is the highest held grade, and without ``downgrade: true`` it stays at its
highest until the rule clears. The outcome of a point (grade, pending grade,
clear) is compared with the station's previous outcome, carried across chunks,
so a Finding is emitted where it changes, wherever the chunk boundaries fell.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from yujing.domain import Finding, Grade
from yujing.durations import format_duration
from yujing.rules import facts, few
from yujing.rules import tree as ex
from yujing.rules import windows as wn
from yujing.rules.arrays import NONE, Grow, from_bytes, seg_first, seg_last, to_bytes, truth
from yujing.rules.compiled import Check, CompiledRule

NO_OUTCOME = -1


@dataclass
class RuleState:
    """What one rule carries from chunk to chunk, by station id."""

    last_outcome: Grow = field(default_factory=lambda: Grow(NO_OUTCOME, np.int64))
    last_eval: Grow = field(default_factory=lambda: Grow(NONE, np.int64))
    run_start: dict[int, Grow] = field(default_factory=dict)  # per check: start of true run
    sticky: Grow = field(default_factory=lambda: Grow(0, np.int64))  # grade held until clear
    group_hits: dict[int, deque] = field(default_factory=dict)  # per GroupCount node

    def snapshot(self, nst: int, nodes: list[ex.GroupCount]) -> dict[str, Any]:
        hits = {}
        for i, node in enumerate(nodes):
            dq = self.group_hits.get(id(node))
            if dq:
                hits[str(i)] = [[t, hs] for (t, hs, _g) in dq]
        return {
            "last_outcome": to_bytes(self.last_outcome.ensure(nst)[:nst]),
            "last_eval": to_bytes(self.last_eval.ensure(nst)[:nst]),
            "sticky": to_bytes(self.sticky.ensure(nst)[:nst]),
            "run_start": {str(i): to_bytes(g.ensure(nst)[:nst]) for i, g in self.run_start.items()},
            "group_hits": hits,
        }

    def restore(self, saved: dict[str, Any], nst: int, nodes: list[ex.GroupCount],
                groups: Callable[[str], np.ndarray]) -> None:
        """``groups(field)`` gives the group code of every station (hits keep theirs)."""
        self.last_outcome.ensure(nst)[:nst] = from_bytes(saved["last_outcome"], np.int64)
        self.last_eval.ensure(nst)[:nst] = from_bytes(saved["last_eval"], np.int64)
        self.sticky.ensure(nst)[:nst] = from_bytes(saved["sticky"], np.int64)
        for i, raw in saved["run_start"].items():
            g = self.run_start[int(i)] = Grow(NONE, np.int64)
            g.ensure(nst)[:nst] = from_bytes(raw, np.int64)
        for i, hits in saved["group_hits"].items():
            node = nodes[int(i)]
            codes = groups(node.by)
            self.group_hits[id(node)] = deque((int(t), int(s), int(codes[s])) for t, s in hits)


class Segments(NamedTuple):
    """Where each station's points begin and end (points sorted by station, time),
    worked out once per rule and chunk for ``held``, ``sticky`` and ``judge``."""

    first: np.ndarray
    last: np.ndarray
    last_st: np.ndarray  # the station of each last point

    @classmethod
    def of(cls, pst: np.ndarray) -> Segments:
        last = seg_last(pst)
        return cls(seg_first(pst), last, pst[last])


def held(cond: np.ndarray, pst: np.ndarray, pt: np.ndarray, hold_ms: int,
         starts: np.ndarray, seg: Segments | None = None) -> np.ndarray:
    """``cond`` that has held for ``hold_ms`` (event time). ``starts`` (by station) is
    the start of the true run each station ended its previous chunk in, or NONE; it
    is updated for the next chunk."""
    if not hold_ms:
        return cond
    seg = seg or Segments.of(pst)
    if not cond.any():  # the usual quiet chunk: no run starts, every station's run ends
        starts[seg.last_st] = NONE
        return cond
    first = seg.first
    prev_true = np.empty_like(cond)
    prev_true[1:] = cond[:-1]
    prior = starts[pst]
    prev_true[first] = prior[first] != NONE
    new_run = cond & ~prev_true
    # marker: a run's start time at its first point, the point's own time where false
    begin = np.where(first & cond & prev_true, prior, pt)
    marker = np.where(new_run | ~cond | (first & cond), wn.keys(pst, np.maximum(begin, wn.EPOCH)), 0)
    run_start = np.maximum.accumulate(marker) - pst * wn.SPAN + wn.EPOCH
    out = cond & (pt - run_start >= hold_ms)
    last = seg.last
    starts[seg.last_st] = np.where(cond[last], run_start[last], NONE)
    return out


def sticky(grade: np.ndarray, clear: np.ndarray, pst: np.ndarray, carry: np.ndarray,
           seg: Segments | None = None) -> np.ndarray:
    """Without ``downgrade: true`` a warning keeps its highest grade until it clears:
    a running maximum of the grade that restarts at every clear. ``carry`` (by station)
    is the grade held at the end of the previous chunk; it is updated."""
    seg = seg or Segments.of(pst)
    if clear.all():  # every point clears: nothing is carried, each grade stands alone
        carry[seg.last_st] = grade[seg.last]
        return grade.copy()
    first = seg.first
    val = grade.copy()
    carried = first & ~clear
    val[carried] = np.maximum(val[carried], carry[pst[carried]])
    group = np.cumsum(first | clear)
    out = np.maximum.accumulate(group * 16 + val) - group * 16
    carry[seg.last_st] = out[seg.last]
    return out


@dataclass
class Judged:
    """Per point: the grade (held), the pending grade (true but not yet held long
    enough), whether the rule clears; and the points whose outcome changed."""

    grade: np.ndarray
    pend: np.ndarray
    clear: np.ndarray
    changed: np.ndarray


def judge(c: CompiledRule, state: RuleState, conds: list[np.ndarray],
          clear_cond: np.ndarray | None, pst: np.ndarray, pt: np.ndarray, nst: int) -> Judged:
    """Grade the points from each grade's condition (in ``c.grades`` order) and the
    clear condition (None: the rule clears when no grade condition holds)."""
    if pst.size <= few.FEW:  # a live envelope's handful of points: walk them
        return _judge_few(c, state, conds, clear_cond, pst, pt, nst)
    grade = np.zeros(pst.size, dtype=np.int64)
    pend = np.zeros(pst.size, dtype=np.int64)
    any_cond = np.zeros(pst.size, dtype=bool)
    seg = Segments.of(pst)
    for i, ((g, check), cond) in enumerate(zip(c.grades, conds)):
        ok = held(cond, pst, pt, check.hold_ms, _starts(state, i, check, nst), seg)
        if not cond.any():  # nothing true: no grade, nothing pending (held() kept its state)
            continue
        any_cond |= cond
        grade[ok & (int(g) > grade)] = int(g)
        pend[cond & ~ok & (int(g) > pend)] = int(g)
    if c.clear is not None and clear_cond is not None:
        k = len(c.grades)
        clear = held(clear_cond, pst, pt, c.clear.hold_ms, _starts(state, k, c.clear, nst),
                     seg) & ~any_cond
    else:
        clear = ~any_cond
    if not c.rule.downgrade:
        grade = sticky(grade, clear, pst, state.sticky.ensure(nst), seg)
    pend = np.where(pend > grade, pend, 0)
    outcome = grade * 16 + pend * 2 + clear.astype(np.int64)

    last_out = state.last_outcome.ensure(nst)
    first = seg.first
    prev = np.empty_like(outcome)
    prev[1:] = outcome[:-1]
    prev[first] = last_out[pst[first]]
    last = seg.last
    last_out[seg.last_st] = outcome[last]
    state.last_eval.ensure(nst)[seg.last_st] = pt[last]
    return Judged(grade, pend, clear, np.flatnonzero(outcome != prev))


def _judge_few(c: CompiledRule, state: RuleState, conds: list[np.ndarray],
               clear_cond: np.ndarray | None, pst: np.ndarray, pt: np.ndarray, nst: int
               ) -> Judged:
    checks = [(int(g), check.hold_ms, _starts(state, i, check, nst))
              for i, (g, check) in enumerate(c.grades)]
    clear_check = None
    if c.clear is not None and clear_cond is not None:
        clear_check = (c.clear.hold_ms, _starts(state, len(c.grades), c.clear, nst))
    grade, pend, clear, changed = few.judge_points(
        checks, clear_check, c.rule.downgrade, conds, clear_cond, pst, pt,
        state.sticky.ensure(nst), state.last_outcome.ensure(nst), state.last_eval.ensure(nst))
    return Judged(np.array(grade, dtype=np.int64), np.array(pend, dtype=np.int64),
                  np.array(clear, dtype=bool), np.array(changed, dtype=np.intp))


def _starts(state: RuleState, i: int, check: Check, nst: int) -> np.ndarray:
    if not check.hold_ms:
        return np.empty(0, np.int64)  # not used: a check without for: holds at once
    grow = state.run_start.get(i)
    if grow is None:  # not setdefault: that would build a new Grow on every call
        grow = state.run_start[i] = Grow(NONE, np.int64)
    return grow.ensure(nst)


GRADES = tuple(Grade)  # by value: indexing is far cheaper than Grade(n) per finding


def findings(c: CompiledRule, j: Judged, pst: np.ndarray, pt: np.ndarray,
             station_names: list[str], ev: Callable[[object], np.ndarray]) -> list[Finding]:
    """A Finding at each changed point, with the value and reason it quotes: the measured
    side of the deciding condition (``ev`` gives any node's array at the points)."""
    out = []
    checks = dict(c.grades)
    changed = j.changed.tolist()
    if not changed:
        return out
    grade, pend = j.grade.tolist(), j.pend.tolist()
    for i in changed:
        g, p = GRADES[grade[i]], GRADES[pend[i]]
        if g:
            check, label, is_pending, is_clear = checks[g], g.label, False, False
        elif p:
            check, label, is_pending, is_clear = checks[p], f"{p.label} pending", True, False
            g = p
        elif j.clear[i]:
            check, label, is_pending, is_clear = c.clear, "clear", False, True
        else:
            continue  # between grade and clear: nothing to say (hysteresis band)
        tree = check.expr.tree if check is not None else None
        prim = ex.primary(tree, lambda n, i=i: bool(truth(ev(n))[i])) \
            if tree is not None else None
        value = float(ev(prim)[i]) if prim is not None else float("nan")
        window_ms = ex.first_window_ms(prim if prim is not None else tree) \
            if tree is not None else 0
        what = ex.unparse(prim) if prim is not None else "no grade condition"
        shown = "n/a" if np.isnan(value) else f"{value:g}"
        rule_text = f"{label}: {check.text}" if check is not None else label
        if check is not None and check.hold_ms:
            rule_text += f" for {format_duration(check.hold_ms)}"
        at = _at(ev, i)
        if tree is not None:
            words = facts.terms(tree, at[0], at[1])
        else:  # a rule without a clear condition clears when its lowest grade fails
            lowest = min(c.grades, key=lambda gc: gc[0])[1]
            words = facts.terms(lowest.expr.tree, at[0], at[1], negate=True)
        out.append(Finding(c.id, station_names[int(pst[i])], int(pt[i]), g, is_clear,
                           value, format_duration(window_ms) if window_ms else "",
                           f"{what} = {shown} ({rule_text})", is_pending, words,
                           check.hold_ms if check is not None else 0))
    return out


def _at(ev: Callable[[object], np.ndarray], i: int
        ) -> tuple[Callable[[object], bool], Callable[[object], float]]:
    """The truth and the number of any node at point ``i``."""
    return (lambda n: bool(truth(ev(n))[i])), (lambda n: float(ev(n)[i]))
