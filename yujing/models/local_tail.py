"""local.py's views of the newest few rows only, every metric in one set of array calls: the
worker's path of the sensor-faults kind (fault_parts.py).

Why: the worker calls the group scorer once per group and envelope, usually with one to a
few new rows after the ``HISTORY`` rows it keeps, and local.py's whole-series path
(:func:`~yujing.models.local.views`, pandas' rolling windows) would recompute every
quantity over all of them, once per metric, to keep the last few: profiled on
``bench/group_speed.py --kind sensor-faults`` that was four fifths of the detector's time
(bench/README.md). Here each quantity is computed for the new rows alone, with the same
operations on the same operands in the same order (each window summed on its own,
:func:`~yujing.models.local.window_mean` with ``last``; the quantiles of the previous
``WINDOW`` rows from sorted windows the caller keeps between calls, sorted_windows.py,
pandas' interpolation), and the metrics are stacked so that a call costs one set of
numpy calls, not one per metric. The numbers are those of the whole-series path, to the
bit (tests/unit/test_local_tail.py against :meth:`~yujing.models.local.LocalResidual.explain`
in chunks of 1, 3, 17 and random sizes; tests/unit/test_sensor_faults.py, chunks of one
row): local.py keeps one implementation of the arithmetic for the whole series, this
module the one for a tail.

Its scope is the worker's: a model whose ``ends`` include ``"steps"`` (the steps' gate is
then the last two squared steps, no pandas median) and the station ``z`` of the rows
before the new ones held by the caller (``zi``, which ``explain`` also fills). Other
callers take local.py's whole-series path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from yujing.models import local, sorted_windows
from yujing.models.sorted_windows import SortedWindows
from yujing.models.window_median import nan_median, window_medians

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
    xt = a[:, i] - a[:, j]  # M × pairs × N: each pair's rows contiguous (whole-row copies)
    sqt = np.square(np.diff(xt, axis=2, prepend=np.nan))
    cols = np.concatenate((xt, sqt), axis=1).reshape(n_metrics * 2 * pairs, n)
    stats, windows = sorted_windows.follow(cols, before, local.WINDOW, QS, windows)
    high, low, mid = (q.reshape(n_metrics, 2 * pairs, last).transpose(0, 2, 1)
                      for q in sorted_windows.quantiles(stats, QS, local.MIN_ROWS))
    x, sq = xt.transpose(0, 2, 1), sqt.transpose(0, 2, 1)  # M × N × pairs (views)
    floor = np.stack([np.fmax(model.floor[m], 1e-9)[i, j] for m in metrics])[:, None, :]
    xp, sp = slice(0, pairs), slice(pairs, 2 * pairs)
    width = np.fmax((high[..., xp] - low[..., xp]) / local.IQR_SD, floor)
    zp = (x[:, before:] - mid[..., xp]) / width
    usual = np.fmax(mid[..., sp], np.square(floor))
    new_sq = sq[:, before:]
    gate = np.fmin(new_sq, sq[:, before - 1:n - 1] if before else
                   np.concatenate((np.full((n_metrics, 1, pairs), np.nan), new_sq[:, :-1]), axis=1))
    rp = np.fmin(local.window_mean(sq, local.SHORT, last), gate) / usual
    z, ratio = np.full((2, n_metrics, last, k, k), np.nan)
    z[..., i, j], z[..., j, i], ratio[..., i, j], ratio[..., j, i] = zp, -zp, rp, rp
    zi_new, steps = np.full((2, n_metrics, last, k), np.nan)
    some = np.isfinite(z).any(axis=-1)
    zi_new[some] = local.agreed(z[some])
    some = np.isfinite(ratio).any(axis=-1)
    steps[some] = np.nanmin(ratio[some], axis=1)
    held, ok = _held(model.ends, metrics, zi, zi_new, before)
    own = local.window_mean(np.square(np.diff(a, axis=2, prepend=np.nan)).transpose(0, 2, 1),
                    local.SHORT, last)
    usual_own = np.stack([np.maximum(model.usual[m], 1e-18) for m in metrics])[:, None, :]
    group = nan_median(own / usual_own)  # M × last
    ref = np.array([model.common_ref[m] for m in metrics])[:, None]
    common = np.nan_to_num(group, nan=0.0) > local.COMMON_RATIO * ref
    ok &= ~common[..., None]
    raw = {"level": np.where(ok, np.abs(zi_new), np.nan), "held": np.where(ok, held, np.nan),
           "steps": np.where(ok, steps, np.nan)}
    out = {}
    for g, m in enumerate(metrics):
        model.common_rows[m] = int(common[g].sum())  # the new rows' (explain's: its rows')
        out[m] = {v: raw[v][g] / model.refs[m][v][None, :] for v in local.VIEWS}
    return out, windows


def _held(ends: Sequence[str], metrics: Sequence[str], zi: dict[str, np.ndarray],
          zi_new: np.ndarray, before: int) -> tuple[np.ndarray, np.ndarray]:
    """(the held view of the new rows, where their ``z`` is finite); ``zi`` advanced. The
    held view reads the ``SLOW − 1`` rows before, the ``z`` an earlier call left in ``zi``."""
    n_metrics, last, k = zi_new.shape
    h = min(before, local.SLOW - 1)
    rows = np.stack([zi[m][zi[m].shape[0] - h:] for m in metrics])  # M × h × k
    both = np.concatenate((rows, zi_new), axis=1)
    cols = both.transpose(1, 0, 2).reshape(h + last, -1)
    fast = window_medians(cols, range(h + 1, h + last + 1), local.FAST, 1)
    fast = fast.reshape(last, n_metrics, k).transpose(1, 0, 2)
    slow = local.window_mean(both, local.SLOW, last)
    held = np.where(fast * slow > 0, np.minimum(np.abs(fast), np.abs(slow)), 0.0)
    if "held" in ends:
        held = np.where(zi_new * fast > 0, np.minimum(held, np.abs(zi_new)), 0.0)
    for g, m in enumerate(metrics):
        zi[m] = both[g][-(local.SLOW - 1):]
    return held, np.isfinite(zi_new)
