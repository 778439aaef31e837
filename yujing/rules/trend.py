"""Looking ahead along a window's robust trend: ``eta()`` and ``project()`` of the rules.

The trend is the Theil–Sen line of the readings in ``(t - W, t]``: its slope is the
median of the slopes between every pair of readings, its level at ``t`` the median
of ``y - slope * x``. One bad reading moves neither, where a least-squares line (or
``rate()``, which only looks at the first and last reading) would swing with it.

Like ``windows.aggregate`` this works on every evaluation point of every series at
once. Points are grouped by how many readings their window holds; each group's
pairwise slopes are one ``(points, pairs)`` array and ``np.median`` along its rows
gives all the slopes together, in blocks that keep the array small. A window with
more than ``MAX_READINGS`` readings (a one-minute gauge over an hour) is thinned to
that many evenly spaced readings, always its first and its newest: 66 pairs per
point instead of 1,770 (a five-minute gauge's hour is used whole). The median of 66
slopes still ignores up to three wild readings of the twelve.
"""

from __future__ import annotations

import numpy as np

from yujing.rules.windows import Flat

HOUR_MS = 3_600_000
MAX_READINGS = 12
_BLOCK = 1 << 21  # slopes held at once (16 MB of float64)


def fit(flat: Flat, sid: np.ndarray, t: np.ndarray, window_ms: int
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slope per hour, trend level at t, newest reading) of series ``sid`` over
    ``(t - W, t]`` at each point; NaN where the window holds fewer than two readings."""
    slope = np.full(t.shape, np.nan)
    level = np.full(t.shape, np.nan)
    newest = np.full(t.shape, np.nan)
    lo, hi = flat.bounds(sid, t, window_ms)
    n = hi - lo
    if not flat.v.size or not (n >= 1).any():
        return slope, level, newest
    has = n >= 1
    newest[has] = flat.v[hi[has] - 1]
    m = np.minimum(n, MAX_READINGS)
    for size in np.unique(m[m >= 2]).tolist():
        at = np.flatnonzero(m == size)
        i, j = np.triu_indices(size, 1)
        step = max(1, _BLOCK // i.size)
        for b in range(0, at.size, step):
            sel = at[b:b + step]
            # evenly spaced readings of each window, first and newest included
            offs = np.rint(np.arange(size) / (size - 1) * (n[sel, None] - 1)).astype(np.int64)
            idx = lo[sel, None] + offs
            x = (flat.ts[idx] - t[sel, None]).astype(np.float64) / HOUR_MS
            y = flat.v[idx]
            s = np.median((y[:, j] - y[:, i]) / (x[:, j] - x[:, i]), axis=1)
            slope[sel] = s
            level[sel] = np.median(y - s[:, None] * x, axis=1)
    return slope, level, newest


def eta(slope: np.ndarray, level: np.ndarray, newest: np.ndarray, threshold: np.ndarray
        ) -> np.ndarray:
    """Hours until the trend reaches ``threshold`` from below: 0 once the newest reading
    is at or over it, infinite when the trend is flat or falling, NaN without a trend."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ahead = np.where(slope > 0, np.maximum((threshold - level) / slope, 0.0), np.inf)
        out = np.where(newest >= threshold, 0.0, ahead)
    return np.where(np.isnan(slope) | np.isnan(threshold), np.nan, out)


def project(slope: np.ndarray, level: np.ndarray, horizon_ms: int) -> np.ndarray:
    """The trend's value ``horizon_ms`` after each point (NaN without a trend)."""
    return level + slope * (horizon_ms / HOUR_MS)
