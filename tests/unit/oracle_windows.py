"""Reference oracle for the window aggregates (not a test module).

This was the engine's first window module (yujing/rules/windows.py before issue
10); the engine now runs yujing.rules.windows (the "flat" layout of many series
at once). It stays here as an independent implementation, one series at a time,
that the property tests in test_windows.py hold the real aggregate against; its
own tests there hold it against plain Python.

Event-time sliding-window aggregates over one series, as array operations.
A series is kept as sorted, de-duplicated timestamps (epoch ms) and values.
The window ending at ``t`` covers ``(t - W, t]``. Aggregates are computed for
many evaluation times at once: sums and means from a cumulative sum, maxima
and minima from a sparse table, so no Python loop runs per reading.
"""

from __future__ import annotations

import numpy as np

# Sums of rain amounts like 0.1 mm are not exact in binary floating point; a
# total that is 50 mm on paper must compare >= 50. Rounding to 1e-9 removes the
# cumulative-sum residue without touching any meaningful digit.
_DECIMALS = 9


def merge(ts: np.ndarray, v: np.ndarray, new_ts: np.ndarray, new_v: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Merge new readings into a sorted series; the same timestamp keeps the newest value.

    Merging the same readings twice gives the same series (idempotent replay).
    """
    all_ts = np.concatenate((ts, new_ts))
    all_v = np.concatenate((v, new_v))
    order = np.argsort(all_ts, kind="stable")
    all_ts, all_v = all_ts[order], all_v[order]
    if all_ts.size > 1:
        keep = np.empty(all_ts.size, dtype=bool)
        keep[-1] = True
        np.not_equal(all_ts[1:], all_ts[:-1], out=keep[:-1])  # last of each run of equal ts
        all_ts, all_v = all_ts[keep], all_v[keep]
    return all_ts, all_v


def bounds(ts: np.ndarray, at: np.ndarray, window_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Index range [lo, hi) of readings inside ``(t - W, t]`` for each ``t`` in ``at``."""
    lo = np.searchsorted(ts, at - window_ms, side="right")
    hi = np.searchsorted(ts, at, side="right")
    return lo, hi


def _sparse_table(v: np.ndarray, fn: np.ufunc) -> list[np.ndarray]:
    table = [v]
    k = 1
    while (1 << k) <= v.size:
        prev = table[-1]
        half = 1 << (k - 1)
        table.append(fn(prev[:-half], prev[half:]))
        k += 1
    return table


def _range_query(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, fn: np.ufunc,
                 empty: float) -> np.ndarray:
    out = np.full(lo.shape, empty, dtype=np.float64)
    ok = hi > lo
    if not ok.any() or v.size == 0:
        return out
    table = _sparse_table(v, fn)
    lo_ok, hi_ok = lo[ok], hi[ok]
    length = hi_ok - lo_ok
    k = np.floor(np.log2(length)).astype(np.int64)
    res = np.empty(lo_ok.shape, dtype=np.float64)
    for level in np.unique(k):
        sel = k == level
        row = table[level]
        a = row[lo_ok[sel]]
        b = row[hi_ok[sel] - (1 << int(level))]
        res[sel] = fn(a, b)
    out[ok] = res
    return out


def _window_sum(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of ``v[lo:hi]`` per window, accurate to the window's own values.

    A prefix sum is O(n) but its difference inherits the rounding error of the
    whole prefix: one huge reading (a logger's 1e15 error code) hours earlier
    turns later 3 h rain sums into noise. Where the worst-case error of the
    prefix difference could reach the rounding step, those windows are summed
    directly instead (``np.add.reduceat``: no Python loop, cost ~ window size).
    """
    v = np.asarray(v, dtype=np.float64)
    csum = np.concatenate(([0.0], np.cumsum(v)))
    out = csum[hi] - csum[lo]
    # Bound on |error| of csum[k]: k * eps * sum(|v[:k]|); a difference has two of them.
    abs_csum = np.concatenate(([0.0], np.cumsum(np.abs(v))))
    bound = 2.0 * hi * np.finfo(np.float64).eps * abs_csum[hi]
    risky = (bound > 0.4 * 10.0 ** -_DECIMALS) & (hi > lo)
    if risky.any():
        lo_r, hi_r = lo[risky], hi[risky]
        padded = np.append(v, 0.0)  # reduceat needs every index < len
        idx = np.empty(2 * lo_r.size, dtype=np.intp)
        idx[0::2], idx[1::2] = lo_r, hi_r
        out[risky] = np.add.reduceat(padded, idx)[0::2]
    return out


def aggregate(ts: np.ndarray, v: np.ndarray, at: np.ndarray, window_ms: int, agg: str
              ) -> np.ndarray:
    """``agg`` of the window ending at each time in ``at``; NaN where the window is empty."""
    lo, hi = bounds(ts, at, window_ms)
    n = (hi - lo).astype(np.float64)
    if agg == "count":
        return n
    if agg in ("sum", "mean"):
        s = np.round(_window_sum(v, lo, hi), _DECIMALS)
        # An empty window is "no data", not 0 mm: NaN, so no condition (not even a clear
        # such as sum < 10) can hold on missing data.
        if agg == "sum":
            return np.where(n > 0, s, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, np.round(s / np.maximum(n, 1), _DECIMALS), np.nan)
    if agg == "max":
        return _range_query(v, lo, hi, np.maximum, np.nan)
    if agg == "min":
        return _range_query(v, lo, hi, np.minimum, np.nan)
    if agg == "spread":
        return _range_query(v, lo, hi, np.maximum, np.nan) - _range_query(v, lo, hi, np.minimum,
                                                                           np.nan)
    ok = hi > lo
    if agg in ("last", "first"):
        out = np.full(at.shape, np.nan)
        out[ok] = v[hi[ok] - 1] if agg == "last" else v[lo[ok]]
        return out
    if agg in ("delta", "rate"):
        # newest minus oldest reading of the window (two readings at least); rate per hour
        two = (hi - lo) >= 2
        out = np.full(at.shape, np.nan)
        d = v[hi[two] - 1] - v[lo[two]]
        if agg == "delta":
            out[two] = d
            return out
        dt = (ts[hi[two] - 1] - ts[lo[two]]).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[two] = np.where(dt > 0, d / np.maximum(dt, 1) * 3_600_000, np.nan)
        return out
    raise ValueError(f"unknown aggregate {agg!r}")


def compare(x: np.ndarray, op: str, value: float) -> np.ndarray:
    """Elementwise condition; NaN (empty window) is never true."""
    with np.errstate(invalid="ignore"):
        if op == ">=":
            return x >= value
        if op == ">":
            return x > value
        if op == "<=":
            return x <= value
        if op == "<":
            return x < value
    raise ValueError(f"unknown operator {op!r}")
