"""Rolling medians of the newest few rows only: the worker's path of neighbours.py's local
level and noise view.

Why: the worker scores a group's rows one or a few at a time, and pandas' rolling medians
over the 14-day past (``NeighbourDetector._local``) cost about a millisecond per metric and
call, recomputing rows already known (measured with ``bench/group_speed.py``: the group
path ran at 15 k readings/s). The medians of just the new rows' windows are the same
numbers (a median is exact; NaN is skipped and ``min_periods`` is a count of finite
values, as in pandas) at a fraction of the cost. The level's 336-row windows are kept
sorted between calls (sorted_windows.py), the short ones sorted per row.
"""

from __future__ import annotations

import numpy as np

from yujing.models import sorted_windows
from yujing.models.sorted_windows import SortedWindows, compiled


def nan_median(a: np.ndarray) -> np.ndarray:
    """``np.nanmedian(a, axis=-1)`` (NaN where a row has no finite value), by one sort: NaN
    sorts last, the median is read at the middle of the finite values. Why: ``nanmedian``
    of short rows goes through masked arrays, many times slower."""
    w = np.sort(a, axis=-1)
    c = np.count_nonzero(np.isfinite(w), axis=-1)
    lo = np.take_along_axis(w, np.maximum((c - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(w, np.minimum(c // 2, a.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    return np.where(c > 0, (lo + hi) / 2, np.nan)


@compiled(inline="always")
def median_of(v, n, buf):  # pragma: no cover - compiled
    """:func:`nan_median` of ``v[:n]`` in a compiled loop, the same numbers: NaN left out,
    infinities sorted in, the mean of the middle two finite places (NaN with none)."""
    m = 0
    finite = 0
    for i in range(n):
        x = v[i]
        if x != x:
            continue
        if np.isfinite(x):
            finite += 1
        p = m
        while p > 0 and buf[p - 1] > x:  # insertion: a few values
            buf[p] = buf[p - 1]
            p -= 1
        buf[p] = x
        m += 1
    if finite == 0:
        return np.nan
    return (buf[(finite - 1) // 2] + buf[finite // 2]) / 2


def window_medians(a: np.ndarray, ends: range, width: int, least: int) -> np.ndarray:
    """Per end ``e``: the median of ``a[e - width:e]`` per column, NaN where it has fewer
    than ``least`` finite values (pandas' ``rolling(width, min_periods=least).median()``
    at row ``e - 1``; rows before the first are missing). A compiled loop of
    :func:`median_of`: the worker's few ends cost no array calls, the whole series no
    ends × columns × width copy."""
    ends = np.asarray(ends, dtype=np.int64)
    if ends.size and ends.max() > np.shape(a)[0]:  # compiled code reads no bounds: refuse here
        raise ValueError(f"window_medians: an end at row {ends.max()} of {np.shape(a)[0]} rows")
    return _window_medians(np.ascontiguousarray(a, dtype=np.float64), ends, width, max(least, 1))


@compiled()
def _window_medians(a, ends, width, least):  # pragma: no cover - compiled
    out = np.full((ends.size, a.shape[1]), np.nan)
    w = np.empty(width)
    buf = np.empty(width)
    for c in range(a.shape[1]):
        for i in range(ends.size):
            finite = 0
            for j in range(width):
                r = ends[i] - width + j
                w[j] = a[r, c] if r >= 0 else np.nan
                finite += np.isfinite(w[j])
            if finite >= least:
                out[i, c] = median_of(w, width, buf)
    return out


def level_and_noise(both: np.ndarray, first: int, level: tuple[int, int],
                    noise: tuple[int, int], windows: SortedWindows | None = None
                    ) -> tuple[np.ndarray, np.ndarray, SortedWindows]:
    """For the rows ``both[first:]`` (the rows before are the state's past): the median of
    the ``level[0]`` rows before each (at least ``level[1]`` finite), and the median of the
    last ``noise[0]`` absolute steps up to each (at least ``noise[1]``); and the level's
    sorted windows, past the last row (sorted_windows.py: ``windows`` are an earlier
    call's, when ``both`` holds its rows then this call's; None: sorted afresh)."""
    n = both.shape[0]
    steps = np.full_like(both, np.nan)
    steps[1:] = np.abs(np.diff(both, axis=0))
    stats, windows = sorted_windows.follow(both.T, first, level[0], (0.5,), windows)
    return (sorted_windows.medians(stats, level[1]).T,
            window_medians(steps, range(first + 1, n + 1), *noise), windows)
