"""Sorted windows kept between calls (models/sorted_windows.py) give pandas' rolling
quantiles to the bit, whatever the calls' sizes; windows that are not the caller's rows
are refused, never read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yujing.models import sorted_windows as sw

QS = (0.75, 0.25, 0.5)


def series(rows: int, seed: int, ties: bool) -> np.ndarray:
    """rows × 5: walks (rounded: many ties), 15 % missing, a long gap, a silent column."""
    rng = np.random.default_rng(seed)
    a = np.cumsum(rng.normal(size=(rows, 5)), axis=0)
    a = np.round(a) if ties else a
    a[rng.random(a.shape) < 0.15] = np.nan
    a[50:400, 1] = np.nan  # windows below min_periods
    a[:, 4] = np.nan
    return a


def pandas_quantiles(a: np.ndarray, width: int, least: int) -> list[np.ndarray]:
    """Each row's quantiles of the ``width`` rows before it (rows × columns)."""
    return [pd.DataFrame(a).rolling(width, min_periods=least).quantile(q).shift(1).to_numpy()
            for q in QS]


def kept(a: np.ndarray, first: int, sizes, width: int, least: int,
         median: bool = False) -> list[np.ndarray]:
    """The rows from ``first`` on, ``sizes`` rows a call (each call passing the rows before
    it as history), the windows kept between calls: quantiles ``QS`` (or the median)."""
    cols, windows = a.T.copy(), None
    qs = (0.5,) if median else QS
    out: list[list[np.ndarray]] = [[] for _ in qs]
    e = first
    for size in sizes:
        stop = min(e + size, cols.shape[1])
        if stop == e:
            break
        stats, windows = sw.follow(cols[:, :stop], e, width, qs, windows)
        got = [sw.medians(stats, least)] if median else sw.quantiles(stats, qs, least)
        for k, q in enumerate(got):
            out[k].append(q.T)
        e = stop
    return [np.vstack(q) for q in out]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("sizes", [[1] * 900, [3] * 300, [17] * 60, [500, 400],
                                   np.random.default_rng(5).integers(1, 60, 80).tolist()])
def test_windows_kept_between_calls_are_pandas_rolling_quantiles_to_the_bit(ties, sizes):
    a = series(900, 7, ties)
    got = kept(a, 0, sizes, 336, 24)
    for q, g, w in zip(QS, got, pandas_quantiles(a, 336, 24)):
        assert g.shape == w.shape and np.array_equal(g, w, equal_nan=True), q
        assert np.isfinite(g[400:, 0]).all()  # the comparison is not all NaN


@pytest.mark.parametrize("first", [0, 20, 335, 336, 500])
def test_windows_started_at_any_row_give_the_rows_after_it(first):
    a = series(520, first, True)
    got = kept(a, first, [3] * 10, 336, 1)
    for g, w in zip(got, pandas_quantiles(a, 336, 1)):
        assert np.array_equal(g, w[first:first + g.shape[0]], equal_nan=True)


@pytest.mark.parametrize("sizes", [[1] * 600, [4] * 150, [250, 250, 100]])
def test_medians_are_the_sorting_paths_medians(sizes):
    """window_median.window_medians (a sort of each window, nan_median's arithmetic) and
    pandas' rolling median, from the same kept windows."""
    from yujing.models.window_median import window_medians

    a = series(600, 11, True)
    got = kept(a, 0, sizes, 336, 24, median=True)[0]
    assert np.array_equal(got, window_medians(a, range(0, 600), 336, 24), equal_nan=True)
    want = pd.DataFrame(a).rolling(336, min_periods=24).median().shift(1).to_numpy()
    np.testing.assert_allclose(got, want, equal_nan=True)
    assert np.isfinite(got[400:, 0]).all()


def test_windows_without_the_leaving_values_are_sorted_afresh_with_the_same_numbers():
    a = series(500, 2, False)
    cols = a.T.copy()
    _, stale = sw.follow(cols[:, :300] + 0.5, 290, 336, QS)  # not these rows' values
    got, _ = sw.follow(cols[:, :403], 400, 336, QS, stale)
    want, _ = sw.follow(cols[:, :403], 400, 336, QS)
    for g, w in zip(sw.quantiles(got, QS, 24), sw.quantiles(want, QS, 24)):
        assert np.array_equal(g, w, equal_nan=True) and np.isfinite(g[0]).all()


def test_infinite_values_are_left_out_as_missing():
    a = series(400, 3, False)
    b = a.copy()
    b[100:110, 0], b[200, 2] = np.inf, -np.inf
    a[100:110, 0] = a[200, 2] = np.nan
    for g, w in zip(kept(b, 0, [7] * 60, 336, 24), kept(a, 0, [7] * 60, 336, 24)):
        assert np.array_equal(g, w, equal_nan=True)


def test_a_leaving_value_not_in_its_window_is_refused():
    cols = np.arange(12.0).reshape(2, 6)
    windows = sw.start(cols, 4, 4)
    with pytest.raises(ValueError, match="1 leaving values were not in their windows"):
        sw.advance(windows, np.array([[0.0], [99.0]]), np.array([[4.0], [10.0]]),
                   np.array([0.5]))
    full = sw.start(cols, 4, 4)  # no missing value in it: a missing one cannot leave
    with pytest.raises(ValueError, match="2 leaving"):
        sw.advance(full, np.full((2, 1), np.nan), np.array([[4.0], [10.0]]), np.array([0.5]))


def test_the_loops_compile_without_a_cache_where_none_can_be_written(monkeypatch):
    """numba raises at import when it can write a cache nowhere (a read-only install);
    the module then compiles without one instead of failing to load."""
    import numba

    def plus_one(x):
        return x + 1

    cached = sw.compiled()(plus_one)
    assert type(cached._cache).__name__ == "FunctionCache"
    monkeypatch.setattr(numba.config, "CACHE_LOCATOR_CLASSES", "ZipCacheLocator")
    with pytest.raises(RuntimeError, match="no locator available"):
        numba.njit(cache=True)(plus_one)
    uncached = sw.compiled()(plus_one)
    assert type(uncached._cache).__name__ == "NullCache" and uncached(2) == 3
