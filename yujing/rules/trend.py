"""Looking ahead along a window's robust trend: ``eta()`` and ``project()`` of the rules.

``eta()`` looks for a rising crossing, or with ``falling`` for a falling one (the same
arithmetic on the mirrored series: ``-y`` reaching ``-threshold``).

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

from dataclasses import dataclass

import numpy as np

from yujing.rules.windows import Flat

HOUR_MS = 3_600_000
MAX_READINGS = 12
_BLOCK = 1 << 21  # slopes held at once (16 MB of float64)


@dataclass
class Fit:
    """Per point: the slope per hour, the trend's level at the point, the newest reading,
    and whether the fit was skipped as unable to reach a threshold in time."""

    slope: np.ndarray
    level: np.ndarray
    newest: np.ndarray
    beyond: np.ndarray


def fit(flat: Flat, sid: np.ndarray, t: np.ndarray, window_ms: int,
        reach: tuple[np.ndarray, int] | None = None, falling: bool = False) -> Fit:
    """The trend of series ``sid`` over ``(t - W, t]`` at each point (NaN where the window
    holds fewer than two readings).

    With ``reach`` = (threshold at each point, limit ms), points whose trend provably
    cannot reach the threshold within the limit (from below; ``falling``: from above)
    are not fitted: ``Fit.beyond`` marks them (see :func:`_beyond`). In quiet times that
    is nearly every point.
    """
    out = Fit(np.full(t.shape, np.nan), np.full(t.shape, np.nan), np.full(t.shape, np.nan),
              np.zeros(t.shape, dtype=bool))
    lo, hi = flat.bounds(sid, t, window_ms)
    n = hi - lo
    if not flat.v.size or not (n >= 1).any():
        return out
    has = n >= 1
    out.newest[has] = flat.v[hi[has] - 1]
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
            if reach is not None:  # falling: the same bound on the mirrored series
                sign = -1.0 if falling else 1.0
                skip = _beyond(x, sign * y, sign * out.newest[sel], sign * reach[0][sel],
                               reach[1] / HOUR_MS)
                out.beyond[sel] = skip
                sel, x, y = sel[~skip], x[~skip], y[~skip]
            s = np.median((y[:, j] - y[:, i]) / (x[:, j] - x[:, i]), axis=1)
            out.slope[sel] = s
            out.level[sel] = np.median(y - s[:, None] * x, axis=1)
    return out


def _beyond(x: np.ndarray, y: np.ndarray, newest: np.ndarray, threshold: np.ndarray,
            hours: float) -> np.ndarray:
    """Rows whose Theil–Sen trend cannot reach ``threshold`` within ``hours``, by a bound
    that needs no pairwise slopes.

    Of the m(m-1)/2 pairs, those at least ``g`` readings apart are more than half (g is
    the largest such gap), and each is at least ``d`` hours apart (the smallest span of
    g consecutive readings), so each of their slopes is at most spread / d and so is the
    median slope s. The trend's value after ``hours`` is the median of
    y_i + s * (hours - x_i), at most max(y) + s * (hours + age of the oldest reading).
    Below the threshold (and the newest reading too), eta is more than ``hours``.
    """
    size = x.shape[1]
    pairs = size * (size - 1) // 2
    g = max(k for k in range(1, size) if (size - k) * (size - k + 1) // 2 >= pairs // 2 + 1)
    d = np.min(x[:, g:] - x[:, :-g], axis=1)
    top = y.max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bound = np.maximum((top - y.min(axis=1)) / d, 0.0)
        reach = top + bound * (hours - x[:, 0])
    margin = 1e-9 * np.maximum(np.abs(threshold), 1.0)
    return (reach < threshold - margin) & (newest < threshold)


def eta(f: Fit, threshold: np.ndarray, falling: bool = False) -> np.ndarray:
    """Hours until the trend reaches ``threshold`` from below: 0 once the newest reading
    is at or over it, infinite when the trend is flat or falling (or, for points the fit
    skipped, cannot get there within its limit: the same to any comparison with the
    limit, the only thing the grammar lets eta() meet), NaN without a trend.

    ``falling`` looks the other way, for a low threshold (a reservoir drawn down to its
    dead level, a recession back under the warning level): 0 once the newest reading is
    at or under it, infinite while the trend is flat or rising. It is the rising case
    of the mirrored series, so the two cannot drift apart."""
    sign = -1.0 if falling else 1.0
    slope, level, threshold = sign * f.slope, sign * f.level, sign * threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        ahead = np.where(slope > 0, np.maximum((threshold - level) / slope, 0.0), np.inf)
        out = np.where(sign * f.newest >= threshold, 0.0, ahead)
    out = np.where(f.beyond, np.inf, out)
    return np.where((np.isnan(slope) & ~f.beyond) | np.isnan(threshold), np.nan, out)


def project(f: Fit, horizon_ms: int) -> np.ndarray:
    """The trend's value ``horizon_ms`` after each point (NaN without a trend)."""
    return f.level + f.slope * (horizon_ms / HOUR_MS)
