"""The parts of the sensor-faults kind (sensor_faults.py) and their streaming state.

Why a module of its own: the kind runs bench/models_eval.py's best composition for the
injected-fault set (``neighbours|stuck|saturation|local.size.ends|local.steps.ends``
with ``--calibrate rows`` and a latch) in the worker, which scores a group's rows a few
at a time (group_stream.py). Each stateful part then has to carry across calls what a
one-pass score reads from earlier rows, so that any chunking gives the numbers of one
pass (tests/unit/test_sensor_faults.py):

- neighbours: its :class:`~yujing.models.neighbours.NeighbourState` (EWMA, CUSUM, the
  residual's last two weeks): the four fields of :class:`FaultsState` of those names;
- stuck: per metric and station the last finite reading and its run length
  (:func:`runs_from`: :func:`~yujing.models.stuck.run_lengths` resumed);
- local: the last ``local.HISTORY`` aligned rows per metric, passed again before the new
  rows (local.py "Causal": the new rows' views need no older row; its rolling windows
  depend on their rows only, so the numbers are the one pass's to the bit), and the
  station ``z`` of the last ``SLOW − 1`` rows (the held view's day: not computed again);
  a call of a few rows computes the views of those rows only, every metric at once
  (local_tail.py: the same numbers), and stuck and the latch go a row at a time over
  every station (the worker's one to a few rows cost no loop over stations);
- saturation: nothing (a row's statistic is that row's);
- the latch: per rule and station whether the last row was in a run of ``keep | start``
  and latched, and its last ``patience − 1`` keep flags (:func:`latch_from`).

Every stored field of :class:`FaultsState` is a dict of arrays, so GroupScorer's snapshot
(group_stream.py) checkpoints it as it does neighbours' state; the sorted windows of
local's yardsticks and neighbours' level (sorted_windows.py) are derived from the kept
rows, marked ``transient`` and sorted afresh after a restore. Pure: numpy, pandas and
numba's compiled loops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from yujing.models import local, local_tail, sorted_windows
from yujing.models.holdoff import k_of_n
from yujing.models.latch import latch
from yujing.models.sorted_windows import SortedWindows

ENDS = ("held", "steps")  # local.*.ends: the gates need the row itself (local.py "Ends")
SIZE, STEPS = ("level", "held"), ("steps",)  # local.size.ends and local.steps.ends
FEW_ROWS = 48  # new rows up to which the row-by-row paths serve a call without windows


@dataclass
class FaultsState:
    """Streaming state of one group: neighbours' four fields, then the other parts'."""

    ewma: dict[str, np.ndarray]  # neighbours (NeighbourState's fields, the same meaning)
    up: dict[str, np.ndarray]
    down: dict[str, np.ndarray]
    past: dict[str, np.ndarray]
    last: dict[str, np.ndarray]  # stuck: metric → the last finite reading per station (NaN: none)
    run: dict[str, np.ndarray]  # stuck: metric → its run length so far
    recent: dict[str, np.ndarray]  # local: metric → the last HISTORY rows × stations
    held: dict[str, np.ndarray]  # local: metric → the station z of the last SLOW − 1 rows
    latch: dict[str, np.ndarray]  # "on<i>", "latched<i>" (stations), "keep<i>" (patience − 1 × stations)
    # local's yardsticks and neighbours' level kept sorted (local_tail.py, window_median.py):
    # derived from ``recent`` and ``past``, so never checkpointed (``transient``); a
    # restored state sorts them afresh at its first call
    windows: SortedWindows | None = field(default=None, metadata={"transient": True})
    level_windows: SortedWindows | None = field(default=None, metadata={"transient": True})


def new_state(neighbours: object, metrics: Sequence[str], stations: int,
              patience: Sequence[int]) -> FaultsState:
    """A fresh state: ``neighbours`` a NeighbourState, ``patience`` one per latch rule."""
    lat: dict[str, np.ndarray] = {}
    for i, p in enumerate(patience):
        lat[f"on{i}"] = np.zeros(stations, dtype=bool)
        lat[f"latched{i}"] = np.zeros(stations, dtype=bool)
        lat[f"keep{i}"] = np.zeros((p - 1, stations), dtype=bool)
    return FaultsState(neighbours.ewma, neighbours.up, neighbours.down, neighbours.past,
                       {m: np.full(stations, np.nan) for m in metrics},
                       {m: np.zeros(stations) for m in metrics},
                       {m: np.empty((0, stations)) for m in metrics},
                       {m: np.empty((0, stations)) for m in metrics}, lat)


def runs_from(v: np.ndarray, last: np.ndarray, run: np.ndarray) -> np.ndarray:
    """:func:`~yujing.models.stuck.run_lengths` of rows that follow a run of ``run``
    readings equal to ``last`` per column (0 and NaN: none); ``last`` and ``run`` are
    advanced in place. One pass over each column's rows in array operations."""
    v = np.asarray(v, dtype=np.float64)
    if v.shape[0] <= FEW_ROWS:
        return _runs_by_row(v, last, run)
    out = np.full(v.shape, np.nan)
    for j in range(v.shape[1]):  # columns (stations), never rows
        rows = np.flatnonzero(np.isfinite(v[:, j]))
        if rows.size == 0:
            continue
        x = v[rows, j]
        changed = x != np.concatenate(([last[j]], x[:-1]))  # NaN: no run before, a change
        i = np.arange(x.size)
        start = np.maximum.accumulate(np.where(changed, i, -1))
        out[rows, j] = np.where(start >= 0, i - start + 1, i + 1 + run[j])
        last[j], run[j] = x[-1], out[rows[-1], j]
    return out


def _runs_by_row(v: np.ndarray, last: np.ndarray, run: np.ndarray) -> np.ndarray:
    """:func:`runs_from` of a few rows, a row at a time over every column at once. Why: the
    worker passes one to a few rows, and a loop over the columns cost a dozen array calls
    per station; a run is the previous one plus 1 where the reading repeats the last finite
    one, else 1 (the same whole numbers)."""
    out = np.full(v.shape, np.nan)
    for t in range(v.shape[0]):
        x = v[t]
        ok = np.isfinite(x)
        now = np.where(x == last, run + 1, 1.0)  # NaN last: no run before, a change
        out[t] = np.where(ok, now, np.nan)
        run[ok], last[ok] = now[ok], x[ok]
    return out


def stuck_statistic(refs: Mapping[str, np.ndarray], values: Mapping[str, np.ndarray],
                    state: FaultsState) -> np.ndarray:
    """stuck.py's statistic (the largest run ÷ reference over the metrics), resumed."""
    out = None
    for m, ref in refs.items():
        s = runs_from(values[m], state.last[m], state.run[m]) / ref
        out = s if out is None else np.fmax(out, s)
    return out


def local_statistics(model: local.LocalResidual, values: Mapping[str, np.ndarray],
                     state: FaultsState) -> tuple[np.ndarray, np.ndarray]:
    """(local.size.ends, local.steps.ends) of the new rows: the views over the state's last
    ``HISTORY`` rows and the new ones, the new rows kept; the state keeps the last
    ``HISTORY``. One fit serves both parts (the bench fits two alike: the same numbers)."""
    n = np.asarray(values[model.metrics[0]]).shape[0]
    both = {m: np.vstack([state.recent[m], np.asarray(values[m], dtype=np.float64)])
            for m in model.metrics}
    size = steps = None
    kept = sorted_windows.kept(state.windows, [state.recent[m] for m in model.metrics])
    state.windows = None
    # the tail's path at any size once windows are kept: a large pass (a worker under
    # load coalesces envelopes) is not sent to the slower whole-series path
    if (n <= FEW_ROWS or kept is not None) and local_tail.usable(model, n, state.held):
        explained, state.windows = local_tail.tail_views(model, both, n, state.held, kept)
    else:
        explained = model.explain(both, state.held)
    for per_view in explained.values():
        for name, s in per_view.items():
            if name in SIZE:
                size = s if size is None else np.fmax(size, s)
            elif name in STEPS:
                steps = s if steps is None else np.fmax(steps, s)
    for m, v in both.items():
        state.recent[m] = v[-local.HISTORY:]
    state.windows = sorted_windows.owned(state.windows, [state.recent[m] for m in model.metrics])
    return size[size.shape[0] - n:], steps[steps.shape[0] - n:]


def latch_from(start: np.ndarray, keep_raw: np.ndarray, present: np.ndarray, patience: int,
               state: FaultsState, i: int) -> np.ndarray:
    """latch.py's latch of rule ``i`` (rows × stations), resumed from ``state``: each
    station's rows are those where it has a reading (``present``: the rows the bench's row
    alarm has), in time order. A virtual first row carries the last row's run: ``keep``
    when it was on, ``start`` when it was latched; the keep flags are prefixed by the last
    ``patience − 1`` ones (:func:`~yujing.models.holdoff.k_of_n` over one station)."""
    on, latched, recent = state.latch[f"on{i}"], state.latch[f"latched{i}"], state.latch[f"keep{i}"]
    if start.shape[0] <= FEW_ROWS:
        return _latch_by_row(start, keep_raw, present, on, latched, recent)
    out = np.zeros(start.shape, dtype=bool)
    for j in range(start.shape[1]):  # stations, never rows
        rows = np.flatnonzero(present[:, j])
        if rows.size == 0:
            continue
        raw = np.concatenate((recent[:, j], keep_raw[rows, j]))
        keep = k_of_n(raw, np.zeros(raw.size, dtype=np.int8), 1, patience)[patience - 1:]
        s = np.concatenate(([latched[j]], start[rows, j]))
        k = np.concatenate(([on[j]], keep))
        got = latch(s, k, np.zeros(s.size, dtype=np.int8))[1:]
        out[rows, j] = got
        on[j], latched[j] = bool(k[-1] or s[-1]), bool(got[-1])
        if patience > 1:
            recent[:, j] = raw[-(patience - 1):]
    return out


def _latch_by_row(start: np.ndarray, keep_raw: np.ndarray, present: np.ndarray, on: np.ndarray,
                  latched: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """:func:`latch_from` of a few rows, a row at a time over every station at once (the
    worker's calls: see :func:`_runs_by_row`). Per station and row with a reading: keep is
    one of the last ``patience`` raw keep flags (``recent`` and this one), and the row is
    latched when it starts or keeps (``on``) and it starts or the row before was latched:
    latch.py's run rule, one row on. The state arrays are advanced in place."""
    out = np.zeros(start.shape, dtype=bool)
    for t in range(start.shape[0]):
        p = present[t]
        keep = keep_raw[t] | recent.any(axis=0)
        now = keep | start[t]
        got = now & (start[t] | latched)
        out[t] = got & p
        on[p], latched[p] = now[p], got[p]
        if recent.shape[0]:
            recent[:, p] = np.vstack((recent[1:], keep_raw[t][None, :]))[:, p]
    return out
