"""``transitions.judge`` for the few points of a live envelope, in plain Python.

A worker's envelope of a few dozen readings gives each rule a handful of points (one or
two per station). The array version then spends its time in some fifty numpy calls on
arrays of a few elements, about a microsecond each; this walk over the points does the
same sums in a tenth of the time. It follows the array version step by step (``held``:
a run starts at a new true point or carries over from the previous chunk, and the run's
start is a running maximum within the station; ``sticky``: a running maximum of the
grade that restarts at every clear and every station), so both give the same result
(tests/unit/test_engine_old_equal.py holds them to the engine before this file existed).
"""

from __future__ import annotations

import numpy as np

from yujing.rules.arrays import NONE
from yujing.rules.windows import EPOCH

FEW = 64  # points of one rule in one chunk: up to here this walk is the faster


def judge_points(checks: list[tuple[int, int, np.ndarray]], clear_check: tuple[int, np.ndarray] | None,
                 downgrade: bool, conds: list[np.ndarray], clear_cond: np.ndarray | None,
                 pst: np.ndarray, pt: np.ndarray, carry: np.ndarray, last_out: np.ndarray,
                 last_eval: np.ndarray) -> tuple[list[int], list[int], list[bool], list[int]]:
    """Grade, pending grade, clear and the changed points, as ``transitions.judge``.

    ``checks``: (grade, hold ms, run starts by station) per grade check in order;
    ``clear_check``: (hold ms, run starts) of the clear condition, or None when the rule
    clears as soon as no grade condition holds. The state arrays are updated."""
    stations, times = pst.tolist(), pt.tolist()
    cond_at = [c.tolist() for c in conds]
    clear_at = clear_cond.tolist() if clear_check is not None else None
    n = len(stations)
    grades, pends, clears, changed = [], [], [], []
    runs = [NONE] * len(checks)  # each check's run start (held) at the previous point
    clear_run = NONE
    held_grade = prev = 0
    for i in range(n):
        s, t = stations[i], times[i]
        first = i == 0 or stations[i - 1] != s
        if first:
            prev = int(last_out[s])
        grade = pend = 0
        any_cond = False
        for k, (g, hold, starts) in enumerate(checks):
            cond = cond_at[k][i]
            if hold:
                runs[k], ok = _held(cond, cond_at[k], i, first, s, t, hold, starts, runs[k])
            else:
                ok = cond
            if cond:
                any_cond = True
                if ok and g > grade:
                    grade = g
                if not ok and g > pend:
                    pend = g
        if clear_check is not None:
            hold, starts = clear_check
            cond = clear_at[i]
            if hold:
                clear_run, cond = _held(cond, clear_at, i, first, s, t, hold, starts, clear_run)
            clear = cond and not any_cond
        else:
            clear = not any_cond
        if not downgrade:
            if first and not clear:
                grade = max(grade, int(carry[s]))
            held_grade = grade if (first or clear) else max(held_grade, grade)
            grade = held_grade
        if pend <= grade:
            pend = 0
        outcome = grade * 16 + pend * 2 + int(clear)
        if outcome != prev:
            changed.append(i)
        prev = outcome
        if i == n - 1 or stations[i + 1] != s:  # the station's last point: carry its state
            for k, (_, hold, starts) in enumerate(checks):
                if hold:
                    starts[s] = runs[k] if cond_at[k][i] else NONE
            if clear_check is not None and clear_check[0]:
                clear_check[1][s] = clear_run if clear_at[i] else NONE
            if not downgrade:
                carry[s] = grade
            last_out[s] = outcome
            last_eval[s] = t
        grades.append(grade)
        pends.append(pend)
        clears.append(clear)
    return grades, pends, clears, changed


def _held(cond: bool, conds: list[bool], i: int, first: bool, s: int, t: int, hold: int,
          starts: np.ndarray, run: int) -> tuple[int, bool]:
    """One point of ``transitions.held``: the run start after it, and whether the
    condition has held for ``hold`` there."""
    if first:
        prior = int(starts[s])
        prev_true = prior != NONE
        run = NONE  # a new station: its first point always sets the run start
    else:
        prior, prev_true = NONE, conds[i - 1]
    if not cond or not prev_true or first:
        begin = prior if (first and cond and prev_true) else t
        run = max(run, max(begin, EPOCH))
    return run, bool(cond and t - run >= hold)
