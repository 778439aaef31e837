"""Event-time window aggregates: the one implementation the engine, the backtest
statistics and the console charts all use.

A window ending at ``t`` covers ``(t - W, t]``. All series needed for one chunk
are laid end to end, each sorted by time (``layout``), and addressed by a flat
key ``sid * SPAN + (ts - EPOCH)``. Because a key never crosses into a
neighbouring series, one ``searchsorted`` finds the window bounds of every
evaluation point of every series together, and prefix sums and sparse tables
answer sum/max/min for all of them without a Python loop. ``rolling`` is the
same aggregate over one series at each of its readings, for charts.

tests/unit/oracle_windows.py is an independent implementation the property
tests hold this one against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EPOCH = 946_684_800_000          # 2000-01-01: gateways reject older event times
DAY_MS = 86_400_000
SPAN = np.int64(1) << np.int64(42)  # ~139 years of ms per series: keys never overlap
_FIXED = 1e6                      # sums in integer micro-units are exact
_FIXED_LIMIT = 9.0e18
AGGREGATES = ("sum", "mean", "max", "min", "spread", "count", "first", "last", "delta", "rate")


def keys(sid: np.ndarray, ts: np.ndarray) -> np.ndarray:
    return sid.astype(np.int64, copy=False) * SPAN + (ts.astype(np.int64, copy=False) - EPOCH)


def split_keys(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sid, ts) of flat keys: the inverse of :func:`keys`."""
    sid = k // SPAN
    return sid, k - sid * SPAN + EPOCH


@dataclass
class Flat:
    """Series laid end to end; ``start[i]`` is the index where point i's series begins."""

    sid: np.ndarray
    ts: np.ndarray
    v: np.ndarray
    key: np.ndarray = field(init=False)
    start: np.ndarray = field(init=False)
    _csum: np.ndarray | None = field(default=None, init=False)
    _csum_big: np.ndarray | None = field(default=None, init=False)
    _tables: dict = field(default_factory=dict, init=False)
    _hits: dict = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.key = keys(self.sid, self.ts)
        n = self.sid.size
        first = np.ones(n, dtype=bool)
        if n > 1:
            first[1:] = self.sid[1:] != self.sid[:-1]
        idx = np.where(first, np.arange(n), 0)
        self.start = np.maximum.accumulate(idx) if n else idx

    # -- bounds ---------------------------------------------------------------------------

    def bounds(self, sid: np.ndarray, t: np.ndarray, window_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) of points of series ``sid`` in ``(t - W, t]``; empty where sid < 0."""
        t = t.astype(np.int64, copy=False)
        base = np.maximum(sid, 0).astype(np.int64, copy=False) * SPAN - EPOCH  # keys() of ts 0
        lo_t = np.maximum(t - window_ms, EPOCH - 1)
        lo = np.searchsorted(self.key, base + lo_t, side="right")
        hi = np.searchsorted(self.key, base + t, side="right")
        missing = sid < 0
        if missing.any():
            hi = np.where(missing, lo, hi)
        return lo, hi

    # -- aggregates -----------------------------------------------------------------------

    def _prefix(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Prefix sums: ordinary values in integer micro-units (exact), and the rare huge
        value (a logger's error code) in a separate float prefix that is exactly flat
        wherever no huge value lies, so one 1e15 never blurs the sums after it."""
        if self._csum is None:
            v = self.v
            limit = _FIXED_LIMIT / (_FIXED * max(v.size, 1))
            finite = np.isfinite(v)  # a non-finite reading adds nothing (gateways refuse them)
            small = finite & (np.abs(np.where(finite, v, 0.0)) <= limit)
            fixed = np.rint(np.where(small, v, 0.0) * _FIXED).astype(np.int64)
            self._csum = np.concatenate(([0], np.cumsum(fixed)))
            big = finite & ~small
            if big.any():
                self._csum_big = np.concatenate(([0.0], np.cumsum(np.where(big, v, 0.0))))
        return self._csum, self._csum_big

    def window_sum(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        c, big = self._prefix()
        s = (c[hi] - c[lo]) / _FIXED
        return s if big is None else s + (big[hi] - big[lo])

    def _table(self, fn: np.ufunc, levels: int) -> list[np.ndarray]:
        table = self._tables.setdefault(fn.__name__, [self.v])
        while len(table) <= levels and (1 << len(table)) <= self.v.size:
            prev = table[-1]
            half = 1 << (len(table) - 1)
            table.append(fn(prev[:-half], prev[half:]))
        return table

    def window_extreme(self, lo: np.ndarray, hi: np.ndarray, fn: np.ufunc) -> np.ndarray:
        out = np.full(lo.shape, np.nan)
        ok = hi > lo
        if not ok.any():
            return out
        lo_ok, hi_ok = lo[ok], hi[ok]
        if int((hi_ok - lo_ok).sum()) <= 2 * self.v.size:  # few points (a live envelope):
            # reduce each window directly rather than build a table over every reading
            v = self.v if hi_ok.max() < self.v.size else np.append(self.v, np.nan)
            out[ok] = fn.reduceat(v, np.stack((lo_ok, hi_ok), axis=1).ravel())[::2]
            return out
        k = np.floor(np.log2(hi_ok - lo_ok)).astype(np.int64)
        table = self._table(fn, int(k.max()))
        res = np.empty(lo_ok.shape)
        for level in np.unique(k).tolist():
            sel = k == level
            row = table[level]
            res[sel] = fn(row[lo_ok[sel]], row[hi_ok[sel] - (1 << level)])
        out[ok] = res
        return out

    def last_index_at_least(self, threshold: float) -> np.ndarray:
        """For each point, the index of the newest point at or before it with v >= threshold
        in the same series, or -1."""
        if threshold not in self._hits:
            idx = np.where(self.v >= threshold, np.arange(self.v.size), -1)
            last = np.maximum.accumulate(idx) if idx.size else idx
            self._hits[threshold] = np.where(last >= self.start, last, -1)
        return self._hits[threshold]


def layout(sid: np.ndarray, ts: np.ndarray, v: np.ndarray) -> Flat:
    """Readings (in arrival order) laid out by series and time; of readings with the same
    series and timestamp the last to arrive wins, so replaying readings changes nothing."""
    arrival = np.arange(sid.size)
    order = np.lexsort((arrival, ts, sid))
    sid, ts, v = sid[order], ts[order], v[order]
    if sid.size > 1:
        k = keys(sid, ts)
        last = np.empty(k.size, dtype=bool)
        last[-1] = True
        np.not_equal(k[1:], k[:-1], out=last[:-1])
        sid, ts, v = sid[last], ts[last], v[last]
    return Flat(sid, ts, v)


def aggregate(flat: Flat, fn: str, sid: np.ndarray, t: np.ndarray, window_ms: int) -> np.ndarray:
    """``fn`` over ``(t - W, t]`` of series ``sid`` for each evaluation point (NaN if empty)."""
    lo, hi = flat.bounds(sid, t, window_ms)
    return of_bounds(flat, fn, lo, hi, t)


def of_bounds(flat: Flat, fn: str, lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``aggregate`` of windows whose bounds are known (``Flat.bounds``): a rule's aggregates
    of one metric and window share them."""
    if fn == "last":  # the commonest first, without the work the others need
        empty = hi <= lo
        return np.where(empty, np.nan, flat.v[np.where(empty, 0, hi - 1)] if flat.v.size else np.nan)
    if fn == "max":
        return flat.window_extreme(lo, hi, np.maximum)
    if fn == "min":
        return flat.window_extreme(lo, hi, np.minimum)
    n = (hi - lo).astype(np.float64)
    if fn == "count":
        return n
    empty = hi <= lo
    with np.errstate(invalid="ignore", divide="ignore"):
        if fn in ("sum", "mean"):
            s = flat.window_sum(lo, hi)
            s = np.where(empty, np.nan, s)
            return s if fn == "sum" else s / n
        if fn == "spread":
            return flat.window_extreme(lo, hi, np.maximum) - flat.window_extreme(lo, hi, np.minimum)
        last_i = np.where(empty, 0, hi - 1)
        first_i = np.where(empty, 0, lo)
        if fn == "first":
            return np.where(empty, np.nan, flat.v[first_i] if flat.v.size else np.nan)
        if not flat.v.size:
            return np.full(t.shape, np.nan)
        d = flat.v[last_i] - flat.v[first_i]
        if fn == "delta":
            return np.where(hi - lo >= 2, d, np.nan)
        if fn == "rate":  # per hour
            dt = (flat.ts[last_i] - flat.ts[first_i]).astype(np.float64)
            return np.where((hi - lo >= 2) & (dt > 0), d / np.maximum(dt, 1) * 3_600_000, np.nan)
    raise ValueError(f"unknown aggregate {fn!r}")


def jump(flat: Flat, sid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """|latest - previous| reading of the series at each point (NaN with fewer than two)."""
    _, hi = flat.bounds(sid, t, int(SPAN))
    if not flat.v.size:
        return np.full(t.shape, np.nan)
    i = np.clip(hi - 1, 0, None)
    ok = (sid >= 0) & (hi - 2 >= 0)
    ok &= np.where(ok, hi - 2 >= flat.start[np.clip(hi - 2, 0, None)], False)
    ok &= np.where(ok, flat.sid[np.clip(hi - 2, 0, None)] == np.maximum(sid, 0), False)
    return np.where(ok, np.abs(flat.v[i] - flat.v[np.clip(hi - 2, 0, None)]), np.nan)


def days_since(flat: Flat, sid: np.ndarray, t: np.ndarray, threshold: float,
               horizon_ms: int) -> np.ndarray:
    """Whole days since the series last reached ``threshold``, capped at the horizon, on a
    flat layout (the engine reads the store instead: ``SeriesStore.days_since``)."""
    cap = horizon_ms // DAY_MS
    out = np.full(t.shape, np.nan)
    _, hi = flat.bounds(sid, t, int(SPAN))
    has = (sid >= 0) & (hi > 0)
    if not has.any() or not flat.v.size:
        return out
    last = flat.last_index_at_least(threshold)[np.clip(hi - 1, 0, None)]
    same = has & (hi - 1 >= 0) & (flat.sid[np.clip(hi - 1, 0, None)] == np.maximum(sid, 0))
    hit = same & (last >= 0)
    days = np.where(hit, (t - flat.ts[np.clip(last, 0, None)]) // DAY_MS, cap)
    return np.where(same, np.minimum(days, cap).astype(np.float64), np.nan)


def rolling(ts: np.ndarray, v: np.ndarray, agg: str, window_ms: int) -> np.ndarray:
    """``agg`` over ``(t - W, t]`` at each reading of one series (any order), as the
    engine computes it: the curve a chart draws beside a threshold line."""
    ts = np.asarray(ts, dtype=np.int64)
    v = np.asarray(v, dtype=np.float64)
    if agg not in AGGREGATES:
        raise ValueError(f"unknown aggregate {agg!r}")
    if ts.size == 0:
        return np.empty(0, dtype=np.float64)
    # keys count from EPOCH; windows only look at differences, so older data is shifted
    t = ts + max(EPOCH - int(ts.min()), 0)
    sid = np.zeros(ts.size, dtype=np.int64)
    return aggregate(layout(sid, t, v), agg, sid, t, window_ms)
