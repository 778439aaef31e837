"""The compiled loops of local.py's views: the window means of both its paths, and the
arithmetic of the worker's few new rows (local_tail.py) after their yardsticks.

Why compiled: the worker calls local_tail.py once per group and envelope with one to a
few new rows, and each quantity there was a numpy call on a few hundred values (pairs,
rows, stations): about a hundred calls per group call, each costing more in numpy's
overhead than in arithmetic (bench/README.md, "local's few rows in one compiled call").
Here every new row, pair and station is a plain loop.

**The same numbers, not nearly.** Every value is computed with the operations, the
operands and the order of local.py's whole-series path: elementwise IEEE arithmetic is
exact in both; medians are order statistics (NaN left out, an odd count's middle value
twice, as window_median.nan_median); ``np.fmax``/``np.fmin`` keep the non-NaN operand;
and the one order-dependent operation, a window's sum, is :func:`window_sums` in both
paths: local.window_mean calls it for the whole series too. It adds a window's values in
numpy's own pairwise order (eight running sums, combined in pairs, then the rest), so the
numbers are those numpy's ``sum`` gave before this module (tests/unit/test_local_kernel.py
against numpy; tests/unit/test_local_tail.py against local.py's pandas path, to the bit).

Pure logic: numpy and numba, no time, no I/O.
"""

from __future__ import annotations

import numpy as np

from yujing.models.sorted_windows import compiled
from yujing.models.window_median import median_of


def window_sums(cols: np.ndarray, window: int, first: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``cols`` (columns × rows) and row from ``first`` on: the sum of the
    finite values among the last ``window`` rows (rows before the first are missing) and
    their count. Returns (sums, counts), columns × (rows − first)."""
    if window > 128:
        raise ValueError(f"window_sums: a window of {window} rows; numpy's pairwise order "
                         "is kept for windows of up to 128")
    cols = np.ascontiguousarray(cols, dtype=np.float64)
    return _window_sums(cols, window, first)


@compiled(inline="always")
def _pairwise(v, n):  # pragma: no cover - compiled
    """The sum of ``v[:n]`` (n ≤ 128) in numpy's pairwise order (its ``pairwise_sum``)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += v[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
    i = 8
    while i < n - n % 8:
        r0 += v[i]
        r1 += v[i + 1]
        r2 += v[i + 2]
        r3 += v[i + 3]
        r4 += v[i + 4]
        r5 += v[i + 5]
        r6 += v[i + 6]
        r7 += v[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += v[i]
        i += 1
    return res


@compiled(inline="always")
def _window_at(col, t, window, buf):  # pragma: no cover - compiled
    """(sum, count) of the finite values of ``col[t − window + 1 : t + 1]`` (before 0: missing)."""
    count = 0
    for w in range(window):
        r = t - window + 1 + w
        v = col[r] if r >= 0 else np.nan
        if np.isfinite(v):
            buf[w] = v
            count += 1
        else:
            buf[w] = 0.0
    return _pairwise(buf, window), count


@compiled(inline="always")
def _mean_at(col, t, window, buf):  # pragma: no cover - compiled
    """local.window_mean of one row: NaN with fewer than half the window finite."""
    total, count = _window_at(col, t, window, buf)
    if count >= max(1, window // 2):
        return total / max(count, 1)
    return np.nan


@compiled()
def _window_sums(cols, window, first):  # pragma: no cover - compiled
    columns, rows = cols.shape
    sums = np.empty((columns, max(rows - first, 0)))
    counts = np.empty((columns, max(rows - first, 0)), np.int64)
    buf = np.empty(window)
    for c in range(columns):
        for t in range(first, rows):
            sums[c, t - first], counts[c, t - first] = _window_at(cols[c], t, window, buf)
    return sums, counts


@compiled()
def tail(x, sq, a, high, low, mid, floor, usual_own, common_at, zi_rows, refs, pair_of,
         before, short, slow, fast, held_ends, iqr_sd):  # pragma: no cover - compiled
    """local_tail.tail_views's arithmetic after the yardsticks, every metric ``g``, new row
    ``r`` (row ``before + r`` of the series), pair and station in loops.

    ``x``, ``sq``: M × pairs × N, the pairs' differences and their squared steps; ``a``:
    M × stations × N, the readings; ``high``, ``low``, ``mid``: M × 2·pairs × last, the
    previous window's quartiles and median of ``x`` (first pairs) and of ``sq``;
    ``floor``: M × pairs, the width floors; ``usual_own``: M × stations; ``common_at``:
    M, the group ratio above which a row is a common change; ``zi_rows``: M × h ×
    stations, the station ``z`` of the rows before; ``refs``: M × 3 × stations (level,
    held, steps); ``pair_of``: stations × stations → pair index (−1 on the diagonal).

    Returns (views: 3 × M × last × stations, each ÷ its reference; the new rows' station
    ``z``: M × last × stations; common: M × last)."""
    n_metrics, pairs, n = x.shape
    k = a.shape[1]
    last = n - before
    h = zi_rows.shape[1]
    views = np.full((3, n_metrics, last, k), np.nan)
    zi_new = np.full((n_metrics, last, k), np.nan)
    common = np.zeros((n_metrics, last), np.bool_)
    zp = np.empty(pairs)
    rp = np.empty(pairs)
    buf = np.empty(max(short, slow))
    steps = np.empty(short)
    own = np.empty(k)
    sorted_buf = np.empty(max(k, fast))
    near = np.empty(fast)
    both = np.empty(h + last)
    for g in range(n_metrics):
        for r in range(last):
            t = before + r
            for p in range(pairs):
                width = np.fmax((high[g, p, r] - low[g, p, r]) / iqr_sd, floor[g, p])
                zp[p] = (x[g, p, t] - mid[g, p, r]) / width
                usual = np.fmax(mid[g, pairs + p, r], floor[g, p] * floor[g, p])
                gate = np.fmin(sq[g, p, t], sq[g, p, t - 1] if t >= 1 else np.nan)
                rp[p] = np.fmin(_mean_at(sq[g, p], t, short, buf), gate) / usual
            for s in range(k):
                for w in range(short):  # this station's own squared steps
                    i = t - short + 1 + w
                    d = a[g, s, i] - a[g, s, i - 1] if i >= 1 else np.nan
                    steps[w] = d * d
                own[s] = _mean_at(steps, short - 1, short, buf) / usual_own[g, s]
            group = median_of(own, k, sorted_buf)
            if group != group:  # np.nan_to_num
                group = 0.0
            elif group == np.inf:
                group = 1.7976931348623157e308
            elif group == -np.inf:
                group = -1.7976931348623157e308
            common[g, r] = group > common_at[g]
            for s in range(k):
                lo, hi, z_some = np.inf, -np.inf, False
                least, ratio_some = np.inf, False
                for j in range(k):
                    p = pair_of[s, j]
                    if p < 0:
                        continue
                    z = zp[p] if s < j else -zp[p]
                    if z == z:  # np.nanmin and np.nanmax, over rows with a finite z
                        lo, hi = min(lo, z), max(hi, z)
                        z_some |= np.isfinite(z)
                    q = rp[p]
                    if q == q:
                        least = min(least, q)
                        ratio_some |= np.isfinite(q)
                if z_some:
                    zi_new[g, r, s] = lo if lo > 0 else (hi if hi < 0 else 0.0)
                    if ratio_some and not common[g, r] and np.isfinite(zi_new[g, r, s]):
                        views[2, g, r, s] = least / refs[g, 2, s]
        for s in range(k):
            for i in range(h):
                both[i] = zi_rows[g, i, s]
            for r in range(last):
                both[h + r] = zi_new[g, r, s]
            for r in range(last):
                z = zi_new[g, r, s]
                if not np.isfinite(z) or common[g, r]:
                    continue
                e = h + r
                for w in range(fast):
                    near[w] = both[e - fast + 1 + w] if e - fast + 1 + w >= 0 else np.nan
                f = median_of(near, fast, sorted_buf)
                mean = _mean_at(both, e, slow, buf)
                held = min(abs(f), abs(mean)) if f * mean > 0 else 0.0
                if held_ends:
                    held = min(held, abs(z)) if z * f > 0 else 0.0
                views[0, g, r, s] = abs(z) / refs[g, 0, s]
                views[1, g, r, s] = held / refs[g, 1, s]
    return views, zi_new, common
