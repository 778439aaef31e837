"""local.py's views of the newest few rows only, every metric in one compiled call: the
worker's path of the sensor-faults kind (fault_parts.py).

Why: the worker calls the group scorer once per group and envelope, usually with one to a
few new rows after the ``HISTORY`` rows it keeps, and local.py's whole-series path
(:func:`~yujing.models.local.views`, pandas' rolling windows) would recompute every
quantity over all of them, once per metric, to keep the last few: profiled on
``bench/group_speed.py --kind sensor-faults`` that was four fifths of the detector's time
(bench/README.md). Here each quantity is computed for the new rows alone, with the same
operations on the same operands in the same order: the pairs' differences and squared
steps of the new rows and of the rows leaving the windows only; the quantiles of the
previous ``WINDOW`` rows from sorted windows the caller keeps between calls
(sorted_windows.py, pandas' interpolation); then every view of every metric, row, pair
and station in one compiled call (local_kernel.py: window sums in numpy's order, the
kernel local.window_mean uses too). The numbers are those of the whole-series path, to the
bit (tests/unit/test_local_tail.py against :meth:`~yujing.models.local.LocalResidual.explain`
in chunks of 1, 3, 17 and random sizes, with rows of a common change;
tests/unit/test_sensor_faults.py, chunks of one row): local.py keeps one implementation of
the arithmetic for the whole series, local_kernel.py the one for a tail.

Its scope is the worker's: a model whose ``ends`` include ``"steps"`` (the steps' gate is
then the last two squared steps, no pandas median) and the station ``z`` of the rows
before the new ones held by the caller (``zi``, which ``explain`` also fills). Other
callers take local.py's whole-series path.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from yujing.models import local, local_kernel, sorted_windows
from yujing.models.sorted_windows import SortedWindows

QS = (0.75, 0.25, 0.5)  # the pairs' high and low quartiles and median, as local._pair reads them


def usable(model: local.LocalResidual, new: int, zi: Mapping[str, np.ndarray] | None) -> bool:
    """Whether :func:`tail_views` serves this call (the module's scope)."""
    return (zi is not None and "steps" in model.ends and 0 < new
            and all(m in zi for m in model.metrics))


def tail_views(model: local.LocalResidual, values: Mapping[str, np.ndarray], last: int,
               zi: dict[str, np.ndarray], windows: SortedWindows | None = None
               ) -> tuple[dict[str, dict[str, np.ndarray]], SortedWindows]:
    """:meth:`~yujing.models.local.LocalResidual.explain` of the last ``last`` rows of
    ``values`` (metric → rows × stations: the caller's history, then the new rows), with
    ``zi`` (metric → the station ``z`` of the rows before the new ones, at most ``SLOW − 1``,
    as :func:`~yujing.models.local.views` gave them) advanced as explain advances it.
    Returns (metric → view → the new rows × stations, each ÷ its fitted reference; the
    yardsticks' sorted windows, ready for the next call). ``windows``: those an earlier
    call returned, when ``values`` holds its rows then this call's (else None: sorted
    afresh)."""
    metrics = model.metrics
    a = np.stack([np.asarray(values[m], dtype=np.float64).T for m in metrics])  # M × k × N
    n_metrics, k, n = a.shape
    before = n - last
    i, j = np.triu_indices(k, 1)
    pairs = i.size
    # the tail: the new rows and the SHORT + 1 before them (the kernel's windows and gate)
    first = max(0, before - local.SHORT - 1)
    xt, sqt = _pairs(a, i, j, first, n)
    stats = None
    if windows is not None:  # the leaving rows' and the new rows' columns only
        stats = sorted_windows.moved(windows, _columns(*_pairs(a, i, j, before - local.WINDOW,
                                                               n - local.WINDOW)),
                                     _columns(xt[..., before - first:], sqt[..., before - first:]),
                                     QS)
    if stats is None:
        stats, windows = sorted_windows.follow(_columns(*_pairs(a, i, j, 0, n)), before,
                                               local.WINDOW, QS)
    high, low, mid = (q.reshape(n_metrics, 2 * pairs, last)
                      for q in sorted_windows.quantiles(stats, QS, local.MIN_ROWS))
    pair_of = np.full((k, k), -1, dtype=np.int64)
    pair_of[i, j] = pair_of[j, i] = np.arange(pairs)
    h = min(before, local.SLOW - 1)
    views, zi_new, common = local_kernel.tail(
        xt, sqt, np.ascontiguousarray(a[..., first:]), high, low, mid,
        np.stack([np.fmax(model.floor[m], 1e-9)[i, j] for m in metrics]),
        np.stack([np.maximum(model.usual[m], 1e-18) for m in metrics]),
        local.COMMON_RATIO * np.array([model.common_ref[m] for m in metrics]),
        np.stack([zi[m][zi[m].shape[0] - h:] for m in metrics]),
        np.stack([[model.refs[m][v] for v in local.VIEWS] for m in metrics]),
        pair_of, before - first, local.SHORT, local.SLOW, local.FAST, "held" in model.ends,
        local.IQR_SD)
    out = {}
    for g, m in enumerate(metrics):
        zi[m] = np.concatenate((zi[m][zi[m].shape[0] - h:], zi_new[g]))[-(local.SLOW - 1):]
        model.common_rows[m] = int(common[g].sum())  # the new rows' (explain's: its rows')
        out[m] = {v: views[c, g] for c, v in enumerate(local.VIEWS)}
    return out, windows


def _pairs(a: np.ndarray, i: np.ndarray, j: np.ndarray, lo: int, hi: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Every pair's difference ``x`` and its squared step at the rows ``[lo, hi)`` of
    ``a`` (M × stations × N; rows before the first are missing), M × pairs × rows: the
    operations of the whole-series path (``np.diff`` then ``np.square``), on these rows."""
    start = max(lo - 1, 0)  # the row before: the first row's step
    x = a[:, i, start:max(hi, start)] - a[:, j, start:max(hi, start)]
    sq = np.square(np.diff(x, axis=2, prepend=np.nan))
    x, sq = x[..., max(lo, 0) - start:], sq[..., max(lo, 0) - start:]
    if lo < 0:  # rows before the first: missing
        gap = np.full((*x.shape[:2], min(-lo, hi - lo)), np.nan)
        x, sq = np.concatenate((gap, x), axis=2), np.concatenate((gap, sq), axis=2)
    return x, sq


def _columns(x: np.ndarray, sq: np.ndarray) -> np.ndarray:
    """The sorted windows' columns (M·2·pairs × rows): each metric's pairs' ``x``, then
    their squared steps (the layout ``high``, ``low`` and ``mid`` are read back in)."""
    return np.concatenate((x, sq), axis=1).reshape(-1, x.shape[2])
