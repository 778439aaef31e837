"""Rolling medians of the newest few rows only: the worker's path of neighbours.py's local
level and noise view.

Why: the worker scores a group's rows one or a few at a time, and pandas' rolling medians
over the 14-day past (``NeighbourDetector._local``) cost about a millisecond per metric and
call, recomputing rows already known (measured with ``bench/group_speed.py``: the group
path ran at 15 k readings/s). The medians of just the new rows' windows are the same
numbers (a median is exact; NaN is skipped and ``min_periods`` is a count of finite
values, as in pandas) at a fraction of the cost.
"""

from __future__ import annotations

import numpy as np


def nan_median(a: np.ndarray) -> np.ndarray:
    """``np.nanmedian(a, axis=-1)`` (NaN where a row has no finite value), by one sort: NaN
    sorts last, the median is read at the middle of the finite values. Why: ``nanmedian``
    of short rows goes through masked arrays, many times slower."""
    w = np.sort(a, axis=-1)
    c = np.count_nonzero(np.isfinite(w), axis=-1)
    lo = np.take_along_axis(w, np.maximum((c - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(w, np.minimum(c // 2, a.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    return np.where(c > 0, (lo + hi) / 2, np.nan)


def window_medians(a: np.ndarray, ends: range, width: int, least: int) -> np.ndarray:
    """Per end ``e``: the median of ``a[e - width:e]`` per column, NaN where it has fewer
    than ``least`` finite values (pandas' ``rolling(width, min_periods=least).median()``
    at row ``e - 1``)."""
    pad = np.vstack([np.full((width, a.shape[1]), np.nan), a])  # every window full width
    idx = np.asarray(ends, dtype=np.int64)[:, None] + np.arange(width)[None, :]
    w = pad[idx].transpose(0, 2, 1)  # ends × columns × width
    c = np.count_nonzero(np.isfinite(w), axis=-1)
    return np.where(c >= least, nan_median(w), np.nan)


def level_and_noise(both: np.ndarray, first: int, level: tuple[int, int],
                    noise: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For the rows ``both[first:]`` (the rows before are the state's past): the median of
    the ``level[0]`` rows before each (at least ``level[1]`` finite), and the median of the
    last ``noise[0]`` absolute steps up to each (at least ``noise[1]``)."""
    n = both.shape[0]
    steps = np.full_like(both, np.nan)
    steps[1:] = np.abs(np.diff(both, axis=0))
    return (window_medians(both, range(first, n), *level),
            window_medians(steps, range(first + 1, n + 1), *noise))


def column_quantiles(cols: np.ndarray, ends: range, width: int, least: int,
                     qs: tuple[float, ...]) -> list[np.ndarray]:
    """Per end ``e`` and quantile ``q`` of ``qs``: the quantile of ``cols[:, e - width:e]``
    per column (``cols``: columns × rows; each quantile columns × ends), NaN with fewer
    than ``least`` finite values: pandas' ``rolling(width, min_periods=least).quantile(q)``
    at row ``e - 1``, with its arithmetic (linear interpolation ``low + (high − low)·f``
    between the order statistics at ``q·(n − 1)``), so the same numbers. One sort serves
    every quantile (local.py's width and level).

    Columns × rows because local_tail.py builds its pairs so: each column's rows are
    contiguous, and the windows are cut from a copy of the rows they cover into one
    C-contiguous array sorted in place (a transposed copy cost the worker's local views a
    sort of strided rows and a second copy; bench/README.md, sensor-faults)."""
    e = np.asarray(ends, dtype=np.int64)
    if e.size == 0:
        return [np.empty((cols.shape[0], 0)) for _ in qs]
    e0 = int(e.min())
    first = max(0, e0 - width)  # only the rows the windows cover
    gap = width - (e0 - first)  # rows before the first: NaN
    pad = np.empty((cols.shape[0], gap + cols.shape[1] - first))
    pad[:, :gap] = np.nan
    pad[:, gap:] = cols[:, first:]
    view = np.lib.stride_tricks.sliding_window_view(pad, width, axis=1)  # columns × starts × width
    w = view.transpose(1, 0, 2)[e - e0]  # ends × columns × width, one C-contiguous copy
    w.sort(axis=-1)  # NaN last
    c = np.count_nonzero(np.isfinite(w), axis=-1)
    flat = w.reshape(-1, width)
    row = np.arange(flat.shape[0])
    out = []
    for q in qs:
        at = q * (c - 1).astype(np.float64)
        i = at.astype(np.int64)
        low = flat[row, np.clip(i, 0, width - 1).ravel()].reshape(c.shape)
        high = flat[row, np.clip(i + 1, 0, width - 1).ravel()].reshape(c.shape)
        v = np.where(at == i, low, low + (high - low) * (at - i))
        out.append(np.where((c >= least) & (c > 0), v, np.nan).T)
    return out
