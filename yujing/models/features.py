"""Past-only window statistics, computed as array work.

Every function here looks at ``v[:i]`` (the readings before ``i``) to describe
reading ``i``; none reads ``v[i+1:]``. Positions whose past is shorter than the
window use the shorter past (a series' first readings), and positions with
fewer than ``min_periods`` past readings get NaN, which the detectors score 0.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533


def median_rows(x: np.ndarray) -> np.ndarray:
    """The median of each row of a finite 2-d array.

    The same numbers as ``np.median(x, axis=1)`` (the middle value, or the mean of the
    two middle values), but by a full row sort: numpy's vectorised sort is about ten
    times faster than its partition on rows of a hundred values.
    """
    return _middle(np.sort(x, axis=1))


def _middle(s: np.ndarray) -> np.ndarray:
    """The median of each row of a row-sorted 2-d array (as ``np.median``)."""
    m = s.shape[1]
    if m % 2:
        return s[:, m // 2].copy()
    return (s[:, m // 2 - 1] + s[:, m // 2]) / 2


def robust_rows(win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust scale (1.4826·MAD; mean absolute deviation on ties) per row.

    One sorted copy of ``win`` serves both medians: the deviations from the median are
    taken from the sorted values and sorted in place (a median does not depend on the
    order of its values), so a call allocates one array of ``win``'s size, not four
    (fresh large arrays cost page faults, more than the arithmetic).
    """
    s = np.sort(win, axis=1)
    med = _middle(s)
    dev = np.subtract(s, med[:, None], out=s)
    np.abs(dev, out=dev)
    dev.sort(axis=1)
    scale = MAD_TO_SIGMA * _middle(dev)
    tied = scale == 0
    if tied.any():  # more than half the window equal (quantised or flat sensors)
        # a mean depends on the order of its terms: the window's own order, as before
        scale[tied] = MEAN_AD_TO_SIGMA * np.abs(win[tied] - med[tied, None]).mean(axis=1)
    return med, scale


def past_median_scale(v: np.ndarray, start: int, window: int, min_periods: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust scale of the ``window`` readings before each of ``v[start:]``."""
    n = v.size
    m = n - start
    med = np.full(m, np.nan)
    scale = np.full(m, np.nan)
    full = max(start, window)  # from here on every position has a whole window behind it
    if full < n:
        win = sliding_window_view(v[full - window: n - 1], window)
        med[full - start:], scale[full - start:] = robust_rows(win)
    for i in range(max(start, min_periods), min(full, n)):  # a series' first readings
        a, b = robust_rows(v[None, :i])
        med[i - start], scale[i - start] = a[0], b[0]
    return med, scale


def past_mean_std(v: np.ndarray, start: int, window: int, min_periods: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the ``window`` readings before each of ``v[start:]``."""
    n = v.size
    idx = np.arange(start, n)
    lo = np.maximum(idx - window, 0)
    cnt = (idx - lo).astype(np.float64)
    # centre on the first value so the running sums stay exact for large levels
    x = v - v[0]
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    with np.errstate(invalid="ignore", divide="ignore"):
        s1 = c1[idx] - c1[lo]
        s2 = c2[idx] - c2[lo]
        mean = s1 / cnt
        var = np.maximum(s2 / cnt - mean * mean, 0.0)
    mean = mean + v[0]
    std = np.sqrt(var)
    short = cnt < max(min_periods, 1)
    mean[short] = np.nan
    std[short] = np.nan
    return mean, std


def rolling_min(c: np.ndarray, span: int) -> np.ndarray:
    """min(c[i - span : i + 1]) for every i (shorter at the start)."""
    n = c.size
    if n == 0:
        return c.copy()
    out = np.minimum.accumulate(c[: min(span, n)])
    if n > span:
        out = np.concatenate((out, sliding_window_view(c, span + 1).min(axis=1)))
    return out
