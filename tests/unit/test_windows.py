"""Window state and aggregates (yujing.rules.windows) against a brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yujing.rules import windows as wn
from yujing.rules.tree import UNBOUNDED_MS

from .oracle_windows import aggregate, bounds, compare, merge

MIN = 60_000
H = 3_600_000


def arr(xs, dtype=np.int64):
    return np.asarray(xs, dtype=dtype)


def naive(ts, v, t, window_ms, agg):
    """The definition: readings with t - W < ts <= t, reduced with plain Python."""
    xs = [x for s, x in zip(ts, v) if t - window_ms < s <= t]
    if agg == "count":
        return float(len(xs))
    if not xs:
        return math.nan
    return {"sum": math.fsum, "mean": lambda a: math.fsum(a) / len(a), "max": max, "min": min,
            "last": lambda a: a[-1]}[agg](xs)


# --- merge -------------------------------------------------------------------------------


def test_merge_sorts_and_combines():
    ts, v = merge(arr([]), arr([], np.float64), arr([30, 10, 20]), arr([3.0, 1.0, 2.0], np.float64))
    assert ts.tolist() == [10, 20, 30]
    assert v.tolist() == [1.0, 2.0, 3.0]
    ts, v = merge(ts, v, arr([15, 40]), arr([1.5, 4.0], np.float64))
    assert ts.tolist() == [10, 15, 20, 30, 40]
    assert v.tolist() == [1.0, 1.5, 2.0, 3.0, 4.0]


def test_merge_same_readings_twice_is_idempotent():
    ts0, v0 = arr([10, 20]), arr([1.0, 2.0], np.float64)
    new_ts, new_v = arr([20, 30, 40]), arr([2.0, 3.0, 4.0], np.float64)
    ts1, v1 = merge(ts0, v0, new_ts, new_v)
    ts2, v2 = merge(ts1, v1, new_ts, new_v)
    assert ts2.tolist() == ts1.tolist() == [10, 20, 30, 40]
    assert v2.tolist() == v1.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_merge_dedupes_a_timestamp_keeping_the_newest_value():
    ts, v = merge(arr([10, 20]), arr([1.0, 2.0], np.float64), arr([20]), arr([9.0], np.float64))
    assert ts.tolist() == [10, 20]
    assert v.tolist() == [1.0, 9.0]


def test_merge_dedupes_within_one_batch_last_one_wins():
    ts, v = merge(arr([]), arr([], np.float64), arr([5, 5, 5, 1]), arr([1.0, 2.0, 3.0, 0.5], np.float64))
    assert ts.tolist() == [1, 5]
    assert v.tolist() == [0.5, 3.0]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(-5, 5)), max_size=40),
       st.integers(0, 40))
def test_merge_equals_dict_of_last_value_per_timestamp(pairs, cut):
    """Merging in two parts equals a dict where each later reading overwrites its slot."""
    first, second = pairs[:cut], pairs[cut:]
    ts, v = merge(arr([]), arr([], np.float64), arr([p[0] for p in first]),
                  arr([p[1] for p in first], np.float64))
    ts, v = merge(ts, v, arr([p[0] for p in second]), arr([p[1] for p in second], np.float64))
    expected = {}
    for t, x in pairs:
        expected[t] = float(x)
    assert ts.tolist() == sorted(expected)
    assert v.tolist() == [expected[t] for t in sorted(expected)]
    # and replaying everything again changes nothing
    ts2, v2 = merge(ts, v, arr([p[0] for p in pairs]), arr([p[1] for p in pairs], np.float64))
    assert ts2.tolist() == ts.tolist() and v2.tolist() == v.tolist()


# --- bounds ------------------------------------------------------------------------------


def test_bounds_window_is_open_left_closed_right():
    ts = arr([0, 10, 20, 30, 40])
    lo, hi = bounds(ts, arr([30]), 20)  # (10, 30] holds 20 and 30, not 10
    assert (lo.tolist(), hi.tolist()) == ([2], [4])
    assert ts[lo[0]:hi[0]].tolist() == [20, 30]


def test_bounds_evaluation_time_between_and_outside_readings():
    ts = arr([0, 10, 20, 30, 40])
    lo, hi = bounds(ts, arr([-5, 25, 100, 40]), 10)
    assert [ts[a:b].tolist() for a, b in zip(lo, hi)] == [[], [20], [], [40]]


# --- aggregate ---------------------------------------------------------------------------


@pytest.mark.parametrize("agg, expected", [
    ("sum", [1.0, 3.0, 5.0, 7.0]),
    ("mean", [1.0, 1.5, 2.5, 3.5]),
    ("max", [1.0, 2.0, 3.0, 4.0]),
    ("min", [1.0, 1.0, 2.0, 3.0]),
    ("last", [1.0, 2.0, 3.0, 4.0]),
    ("count", [1.0, 2.0, 2.0, 2.0]),
])
def test_aggregate_table(agg, expected):
    ts = arr([0, 10, 20, 30])
    v = arr([1.0, 2.0, 3.0, 4.0], np.float64)
    assert aggregate(ts, v, ts, 20, agg).tolist() == expected


@pytest.mark.parametrize("agg", ["sum", "mean", "max", "min", "last"])
def test_empty_window_is_nan_and_never_true(agg):
    ts = arr([0])
    v = arr([5.0], np.float64)
    out = aggregate(ts, v, arr([100]), 10, agg)
    assert math.isnan(out[0])
    assert not compare(out, ">=", -1e300)[0]
    assert not compare(out, "<", 1e300)[0]


def test_count_of_empty_window_is_zero_and_empty_series_works():
    empty_ts, empty_v = arr([]), arr([], np.float64)
    assert aggregate(empty_ts, empty_v, arr([5, 6]), 10, "count").tolist() == [0.0, 0.0]
    assert np.isnan(aggregate(empty_ts, empty_v, arr([5]), 10, "max")).all()
    assert np.isnan(aggregate(empty_ts, empty_v, arr([5]), 10, "sum")).all()


def test_unknown_aggregate_and_operator_raise():
    with pytest.raises(ValueError, match="median"):
        aggregate(arr([1]), arr([1.0], np.float64), arr([1]), 10, "median")
    with pytest.raises(ValueError, match="=="):
        compare(arr([1.0], np.float64), "==", 1.0)


def test_compare_operators():
    x = arr([1.0, 2.0, 3.0, np.nan], np.float64)
    assert compare(x, ">=", 2).tolist() == [False, True, True, False]
    assert compare(x, ">", 2).tolist() == [False, False, True, False]
    assert compare(x, "<=", 2).tolist() == [True, True, False, False]
    assert compare(x, "<", 2).tolist() == [True, False, False, False]


def test_rain_sum_of_tenths_reaches_50_exactly():
    """500 gauge tips of 0.1 mm are 50 mm on paper; the sum must compare >= 50."""
    ts = np.arange(1000, dtype=np.int64) * MIN
    v = np.full(1000, 0.1)
    at = ts[741:742]  # the window (241, 741] min: its 500 tips follow 241 earlier ones
    # The trap: a plain prefix-sum difference for this window falls short of 50.
    csum = np.concatenate(([0.0], np.cumsum(v)))
    assert csum[742] - csum[242] < 50
    total = aggregate(ts, v, at, 500 * MIN, "sum")
    assert total[0] == 50.0
    assert compare(total, ">=", 50).all()
    assert aggregate(ts, v, at, 500 * MIN, "mean")[0] == 0.1
    assert aggregate(ts, v, at, 500 * MIN, "count")[0] == 500


def test_rain_sum_of_tenths_in_sliding_windows_of_a_long_series():
    """Every 3 h window of 0.1 mm a minute holds exactly 18 mm, however long the series."""
    n = 20_000
    ts = np.arange(n, dtype=np.int64) * MIN
    v = np.full(n, 0.1)
    at = ts[180:]
    sums = aggregate(ts, v, at, 3 * H, "sum")
    assert (sums == 18.0).all()
    assert compare(sums, ">=", 18).all()


def test_a_huge_reading_does_not_spoil_later_sums():
    """A logger's error code (1e15) hours ago must not turn today's window sums into noise."""
    ts = np.arange(601, dtype=np.int64) * MIN
    v = np.array([1e15] + [0.1] * 600)
    at = ts[-1:]
    assert aggregate(ts, v, at, 500 * MIN, "sum")[0] == 50.0
    assert aggregate(ts, v, at, 500 * MIN, "mean")[0] == 0.1
    assert aggregate(ts, v, at, 601 * MIN, "sum")[0] == pytest.approx(1e15 + 60.0, rel=1e-15)


AGGS = ["sum", "mean", "max", "min", "last", "count"]


@settings(max_examples=300, deadline=None)
@given(
    # mostly gauge-sized values, sometimes a logger's absurd error code among them
    data=st.lists(st.tuples(st.integers(0, 200),
                            st.one_of(st.floats(-1e6, 1e6), st.floats(-1e15, 1e15),
                                      st.integers(0, 300).map(lambda k: k / 10))),
                  max_size=60),
    at=st.lists(st.integers(-20, 260), min_size=1, max_size=20),
    window=st.integers(1, 120),
    agg=st.sampled_from(AGGS),
)
def test_aggregate_matches_brute_force(data, at, window, agg):
    ts, v = merge(arr([]), arr([], np.float64), arr([d[0] for d in data]),
                  arr([d[1] for d in data], np.float64))
    got = aggregate(ts, v, arr(at), window, agg)
    for t, g in zip(at, got.tolist()):
        want = naive(ts.tolist(), v.tolist(), t, window, agg)
        if math.isnan(want):
            assert math.isnan(g), (t, g)
        elif agg in ("sum", "mean"):
            scale = max(1.0, sum(abs(x) for s, x in zip(ts.tolist(), v.tolist())
                                 if t - window < s <= t))
            assert abs(g - want) <= 1e-9 * scale, (t, g, want)
        else:
            assert g == want, (t, g, want)


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(st.integers(0, 30), min_size=1, max_size=400),
       window_min=st.integers(1, 400))
def test_rain_tenths_property_sum_is_exact_in_tenths(steps, window_min):
    """Gauges report multiples of 0.1 mm: a window sum equals its count of tenths / 10."""
    n = len(steps)
    ts = np.arange(n, dtype=np.int64) * MIN
    v = np.array([k / 10 for k in steps])
    got = aggregate(ts, v, ts, window_min * MIN, "sum")
    for i in range(n):
        tenths = sum(steps[max(0, i - window_min + 1): i + 1])
        assert got[i] == tenths / 10
        assert (got[i] >= 50) == (tenths >= 500)


# --- the engine's aggregate (yujing.rules.windows) against the oracle ----------------------
#
# The engine lays many series end to end (windows.layout: sorted by series and time, the last
# arrival wins a timestamp) and answers every evaluation point of every series at once. Here
# random readings of a few series arrive out of order, with repeated timestamps (a replay or a
# corrected value) and gaps; each series is merged on its own by the oracle, and the real
# aggregate must give the oracle's answer at random times, for random windows.


BASE = wn.EPOCH + 800_000_000_000  # 2025: the engine's keys count from 2000
ALL_AGGS = list(wn.AGGREGATES)
VALUES = st.one_of(st.floats(-1e6, 1e6), st.floats(-1e15, 1e15),
                   st.integers(0, 300).map(lambda k: k / 10))


@st.composite
def arrivals(draw, max_series=3):
    """(series, ts offset, value) in arrival order; offsets cluster so windows overlap,
    repeat so timestamps collide, and jump so series have gaps."""
    n_series = draw(st.integers(1, max_series))
    return draw(st.lists(st.tuples(st.integers(0, n_series - 1),
                                   st.one_of(st.integers(0, 40), st.integers(0, 400)),
                                   VALUES), max_size=60)), n_series


def engine_layout(readings):
    sid = arr([r[0] for r in readings])
    ts = arr([BASE + r[1] for r in readings])
    v = arr([r[2] for r in readings], np.float64)
    return wn.layout(sid, ts, v)


def oracle_series(readings, s):
    mine = [r for r in readings if r[0] == s]
    return merge(arr([]), arr([], np.float64), arr([BASE + r[1] for r in mine]),
                 arr([r[2] for r in mine], np.float64))


def sum_tolerance(flat, readings, s, t, window):
    """The engine sums in integer micro-units (each value rounded to 1e-6, so tenths of a
    millimetre add up exactly) and keeps huge values in a float prefix of their own."""
    ts, v = oracle_series(readings, s)
    inside = np.abs(v[(ts > t - window) & (ts <= t)])
    return 5e-7 * inside.size + 1e-9 * max(1.0, inside.sum()) + \
        8 * np.finfo(np.float64).eps * flat.v.size * np.abs(flat.v).sum()


def assert_close(agg, got, want, tol):
    if math.isnan(want):
        assert math.isnan(got), (agg, got, want)
    elif agg in ("sum", "mean"):
        assert abs(got - want) <= tol, (agg, got, want, tol)
    else:
        assert got == want, (agg, got, want)


@settings(max_examples=400, deadline=None)
@given(data=arrivals(), at=st.lists(st.tuples(st.integers(-1, 3), st.integers(-20, 460)),
                                    min_size=1, max_size=20),
       window=st.one_of(st.integers(1, 120), st.just(UNBOUNDED_MS)),
       agg=st.sampled_from(ALL_AGGS))
def test_engine_aggregate_matches_the_oracle(data, at, window, agg):
    readings, n_series = data
    flat = engine_layout(readings)
    sid = arr([min(s, n_series - 1) if s >= 0 else -1 for s, _ in at])  # -1: no such series
    t = arr([BASE + x for _, x in at])
    got = wn.aggregate(flat, agg, sid, t, window)
    for s, tt, g in zip(sid.tolist(), t.tolist(), got.tolist()):
        if s < 0:
            assert (g == 0.0) if agg == "count" else math.isnan(g)
            continue
        ts, v = oracle_series(readings, s)
        want = aggregate(ts, v, arr([tt]), window, agg)[0]
        assert_close(agg, g, want, sum_tolerance(flat, readings, s, tt, window))


@settings(max_examples=200, deadline=None)
@given(data=arrivals(max_series=1), window=st.integers(1, 120), agg=st.sampled_from(ALL_AGGS))
def test_rolling_for_charts_is_the_engine_aggregate_at_each_reading(data, window, agg):
    readings, _ = data
    ts = arr([BASE + r[1] for r in readings])
    v = arr([r[2] for r in readings], np.float64)
    got = wn.rolling(ts, v, agg, window)
    assert got.shape == ts.shape
    flat = engine_layout(readings)
    o_ts, o_v = oracle_series(readings, 0)
    for tt, g in zip(ts.tolist(), got.tolist()):
        want = aggregate(o_ts, o_v, arr([tt]), window, agg)[0]
        assert_close(agg, g, want, sum_tolerance(flat, readings, 0, tt, window))
    # the same curve however far back the data lies (windows only look at differences)
    old = wn.rolling(ts - BASE, v, agg, window)
    assert np.array_equal(old, got, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(data=arrivals(), at=st.lists(st.tuples(st.integers(-1, 3), st.integers(-20, 460)),
                                    min_size=1, max_size=20),
       threshold=st.sampled_from([0.1, 0.0, 5.0, 1e6]))
def test_jump_and_days_since_match_plain_python(data, at, threshold):
    readings, n_series = data
    day = 86_400_000
    # days apart, so days_since counts something; the same arrival order as above
    readings = [(s, x * day // 40, v) for s, x, v in readings]
    flat = engine_layout(readings)
    sid = arr([min(s, n_series - 1) if s >= 0 else -1 for s, _ in at])
    t = arr([BASE + x * day // 40 for _, x in at])
    horizon = 10 * day
    jumps = wn.jump(flat, sid, t)
    since = wn.days_since(flat, sid, t, threshold, horizon)
    for s, tt, j, d in zip(sid.tolist(), t.tolist(), jumps.tolist(), since.tolist()):
        ts, v = oracle_series(readings, s) if s >= 0 else (arr([]), arr([], np.float64))
        past = [(a, b) for a, b in zip(ts.tolist(), v.tolist()) if a <= tt]
        want_j = abs(past[-1][1] - past[-2][1]) if len(past) >= 2 else math.nan
        assert (math.isnan(j) and math.isnan(want_j)) or j == want_j, (j, want_j)
        if not past:
            assert math.isnan(d)
            continue
        hits = [a for a, b in past if b >= threshold]
        want_d = min((tt - hits[-1]) // day, horizon // day) if hits else horizon // day
        assert d == want_d, (d, want_d)


def test_layout_keeps_the_last_arrival_of_a_timestamp_in_each_series():
    flat = wn.layout(arr([1, 0, 1, 0, 1]), arr([BASE + 5, BASE + 5, BASE + 5, BASE + 1, BASE]),
                     arr([1.0, 2.0, 3.0, 4.0, 5.0], np.float64))
    assert flat.sid.tolist() == [0, 0, 1, 1]
    assert (flat.ts - BASE).tolist() == [1, 5, 0, 5]
    assert flat.v.tolist() == [4.0, 2.0, 5.0, 3.0]
    assert flat.start.tolist() == [0, 0, 2, 2]
