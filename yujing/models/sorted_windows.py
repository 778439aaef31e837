"""Rolling windows kept sorted between calls: each new row's order statistics by one
removal and one insertion per column instead of a sort of its whole window.

Why: the worker scores a group's rows a few at a time, and local's yardsticks (the pairs'
quartiles and median over the last ``local.WINDOW`` = 336 rows, local_tail.py) sorted
every new row's window again: for a group of ten stations and three metrics, 270 columns
of 336 values per row, the largest single cost of the sensor-faults kind in the worker
(bench/README.md, "Sorted windows kept between calls"). The window of the next row differs
from this one's by one value out and one in; kept sorted, it moves by a binary search and
a shift of the values between the two places.

The loop over columns and rows is compiled with numba (a binary search and a memmove per
value; in numpy each row of each column would be several array calls). The arithmetic
that turns order statistics into quantiles stays in numpy (:func:`quantiles`): pandas'
``rolling(width, min_periods=least).quantile(q)``, the same numbers
(tests/unit/test_sorted_windows.py).

A window's values that are not finite (NaN, ±inf) are left out of it; ``count`` is the
number of finite values. pandas (the whole-series path) counts an infinity as a value:
the two differ only where a reading is absurd enough to overflow (a squared step of a
value beyond 1e154).

Pure logic: numpy and numba, no time, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np


def compiled(**options: Any) -> Any:
    """``numba.njit`` with its on-disk cache where a cache directory can be written (beside
    the module, ``NUMBA_CACHE_DIR`` or the user's cache), else without one. Why: numba
    refuses to cache, at import, where it can write nowhere (a read-only install, as
    deploy/systemd's ``ProtectSystem=strict`` makes it without ``NUMBA_CACHE_DIR``); the
    worker must still load its models, compiling the loops at its first call (about a
    second) instead of reading them from the cache (0.2 s)."""
    def wrap(fn: Any) -> Any:
        try:
            return numba.njit(cache=True, nogil=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, **options)(fn)
    return wrap


@dataclass
class SortedWindows:
    """Each column's window, ascending, its finite values first (then NaN), ready for the
    row after the last one the caller passed. ``owner`` is the caller's check that the
    windows still follow its rows (fault_parts.py: the state's kept rows, by identity)."""

    values: np.ndarray  # columns × width
    count: np.ndarray  # columns: finite values in each window (int64)
    owner: Any = None


def kept(windows: SortedWindows | None, rows: list[np.ndarray]) -> SortedWindows | None:
    """``windows`` when they follow ``rows`` (the arrays :func:`owned` named, by identity:
    a caller's kept rows are new arrays after each call), else None (sort afresh)."""
    owner = windows.owner if windows is not None else None
    if owner is None or len(owner) != len(rows) or any(a is not b for a, b in zip(owner, rows)):
        return None
    return windows


def owned(windows: SortedWindows | None, rows: list[np.ndarray]) -> SortedWindows | None:
    """``windows`` marked as following ``rows`` (the caller's kept rows after this call)."""
    if windows is not None:
        windows.owner = rows
    return windows


def start(cols: np.ndarray, end: int, width: int) -> SortedWindows:
    """The sorted windows of ``cols[:, end - width:end]`` (``cols``: columns × rows; rows
    before the first are missing), by one numpy sort."""
    first = max(0, end - width)
    w = np.full((cols.shape[0], width), np.nan)
    part = cols[:, first:end]
    w[:, width - part.shape[1]:] = np.where(np.isfinite(part), part, np.nan)
    w.sort(axis=1)  # NaN last
    return SortedWindows(w, np.count_nonzero(np.isfinite(w), axis=1).astype(np.int64))


Stats = tuple[np.ndarray, np.ndarray, np.ndarray]  # (count, low, high): see advance


def follow(cols: np.ndarray, before: int, width: int, qs: tuple[float, ...],
           windows: SortedWindows | None = None) -> tuple[Stats, SortedWindows]:
    """The order statistics (:func:`advance`) of each column's previous ``width`` rows at
    the rows from ``before`` on (``cols``: columns × rows, the rows before ``before`` the
    history), and the windows moved past the last row, ready for the next call.
    ``windows``: those an earlier call returned, when ``cols`` holds its rows and then
    this call's (the caller knows: ``SortedWindows.owner``); None is sorted afresh. A
    leaving value not in its window shows windows of other rows (a bug): they are sorted
    afresh too, the same numbers; other rows' windows can hold the leaving values, so
    that check cannot replace the caller's."""
    back = np.arange(before, cols.shape[1]) - width  # the row each row's window drops
    leaving = np.full((cols.shape[0], back.size), np.nan)  # before the first row: missing
    leaving[:, back >= 0] = cols[:, back[back >= 0]]
    entering = cols[:, before:]
    stats = moved(windows, leaving, entering, qs) if windows is not None else None
    if stats is not None:
        return stats, windows
    windows = start(cols, before, width)
    return advance(windows, leaving, entering, np.asarray(qs, dtype=np.float64)), windows


def moved(windows: SortedWindows, leaving: np.ndarray, entering: np.ndarray,
          qs: tuple[float, ...]) -> Stats | None:
    """:func:`advance` with the rows' leaving and entering values (columns × rows), or
    None when a leaving value is not in its window: the windows are not those of the
    caller's rows (then spent: sort afresh, :func:`follow`). For a caller that computes
    the columns of the leaving and new rows only (local_tail.py), not of the whole window."""
    try:
        return advance(windows, leaving, entering, np.asarray(qs, dtype=np.float64))
    except ValueError:
        return None


def quantiles(stats: Stats, qs: tuple[float, ...], least: int) -> list[np.ndarray]:
    """Per quantile ``q`` of ``qs`` (the ``qs`` the statistics were read for): each
    window's quantile, NaN with fewer than ``least`` finite values. pandas' arithmetic
    (``rolling(width, min_periods=least).quantile(q)``): linear interpolation
    ``low + (high − low)·f`` between the order statistics at ``q·(n − 1)``."""
    c, low, high = stats
    at = (c - 1).astype(np.float64)
    out = []
    for k, q in enumerate(qs):
        pos = q * at
        i = pos.astype(np.int64)
        v = np.where(pos == i, low[k], low[k] + (high[k] - low[k]) * (pos - i))
        out.append(np.where((c >= least) & (c > 0), v, np.nan))
    return out


def medians(stats: Stats, least: int) -> np.ndarray:
    """Each window's median from statistics read for ``qs = (0.5,)``, NaN with fewer than
    ``least`` finite values: window_median.py's arithmetic (the mean of the middle two
    values, one value twice when the count is odd), so its numbers."""
    c, low, high = stats
    mid = (low[0] + np.where(c % 2 == 0, high[0], low[0])) / 2
    return np.where((c >= least) & (c > 0), mid, np.nan)


def advance(windows: SortedWindows, leaving: np.ndarray, entering: np.ndarray, qs: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``L`` rows (``leaving`` and ``entering``: columns × L): read the window's
    order statistics, then move it on one row (``leaving[:, l]`` out, ``entering[:, l]``
    in). Returns (count, low, high): the finite values of each window (columns × L) and,
    per quantile ``q`` of ``qs``, the values at ``i = int(q·(count − 1))`` and ``i + 1``
    (clipped to the width), Q × columns × L (:func:`quantiles` interpolates between them).
    ``windows`` ends one row past the last entering row.

    A leaving value not found in its window means the windows are not those of the
    caller's rows (a bug): ``ValueError``, and the caller starts them afresh."""
    leaving = np.ascontiguousarray(leaving, dtype=np.float64)
    entering = np.ascontiguousarray(entering, dtype=np.float64)
    n, low, high, lost = _advance(windows.values, windows.count, leaving, entering,
                                  np.ascontiguousarray(qs, dtype=np.float64))
    if lost:
        raise ValueError(f"{lost} leaving values were not in their windows")
    return n, low, high


@compiled()
def _advance(w, count, leaving, entering, qs):  # pragma: no cover - compiled
    columns, rows = entering.shape
    width = w.shape[1]
    n = np.empty((columns, rows), np.int64)
    low = np.empty((qs.size, columns, rows))
    high = np.empty((qs.size, columns, rows))
    lost = 0
    for col in range(columns):
        s = w[col]
        c = count[col]
        for r in range(rows):
            n[col, r] = c
            for k in range(qs.size):
                i = int(qs[k] * float(c - 1))
                low[k, col, r] = s[min(max(i, 0), width - 1)]
                high[k, col, r] = s[min(max(i + 1, 0), width - 1)]
            x, y = leaving[col, r], entering[col, r]
            if np.isfinite(x) and np.isfinite(y):  # the usual row: one shift, not two
                lost += _replace(s, c, x, y)
                continue
            after = _remove(s, c, x)
            if after < 0:
                lost += 1
            else:
                c = _insert(s, after, y)
        count[col] = c
    return n, low, high, lost


@compiled(inline="always")
def _replace(s, c, x, y):  # pragma: no cover - compiled
    """Put ``y`` in the place of ``x`` among the finite values ``s[:c]``, moving only the
    values between the two places; 1 when ``x`` is not there (nothing moved), else 0."""
    p = _first_not_below(s, 0, c, x)
    if p == c or s[p] != x:
        return 1
    if y >= x:
        lo = _first_above(s, p + 1, c, y)
        for t in range(p, lo - 1):
            s[t] = s[t + 1]
        s[lo - 1] = y
    else:
        q = _first_above(s, 0, p, y)
        for t in range(p, q, -1):
            s[t] = s[t - 1]
        s[q] = y
    return 0


@compiled(inline="always")
def _first_not_below(s, lo, hi, x):  # pragma: no cover - compiled
    """The first index in ``[lo, hi)`` whose value is not below ``x`` (``hi``: none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if s[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@compiled(inline="always")
def _first_above(s, lo, hi, x):  # pragma: no cover - compiled
    """The first index in ``[lo, hi)`` whose value is above ``x`` (``hi``: none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if s[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@compiled(inline="always")
def _remove(s, c, x):  # pragma: no cover - compiled
    """Take ``x`` out of the finite values ``s[:c]`` (a missing ``x`` was a NaN slot);
    −1 when ``x`` is not there."""
    if not np.isfinite(x):
        return c if c < s.size else -1
    lo = _first_not_below(s, 0, c, x)  # x itself, when it is in the window
    if lo == c or s[lo] != x:
        return -1
    for t in range(lo, c - 1):
        s[t] = s[t + 1]
    s[c - 1] = np.nan
    return c - 1


@compiled(inline="always")
def _insert(s, c, x):  # pragma: no cover - compiled
    """Put ``x`` into the finite values ``s[:c]`` in order (a missing ``x`` fills a NaN slot)."""
    if not np.isfinite(x):
        return c
    lo = _first_above(s, 0, c, x)
    for t in range(c, lo, -1):
        s[t] = s[t - 1]
    s[lo] = x
    return c + 1
