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
from yujing.models.sorted_windows import SortedWindows


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
