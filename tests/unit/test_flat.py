"""Window sums over the flat layout stay exact next to absurd readings."""

from __future__ import annotations

import numpy as np

from yujing.rules.windows import Flat, aggregate

MIN = 60_000
T0 = 1_750_000_000_000


def test_a_huge_reading_does_not_spoil_sums_after_it_leaves_the_window():
    n = 600
    ts = T0 + np.arange(n, dtype=np.int64) * MIN
    v = np.full(n, 0.1)
    v[10] = 1e15  # a logger's error code
    flat = Flat(np.zeros(n, np.int64), ts, v)
    at = ts[-1:]
    assert aggregate(flat, "sum", np.zeros(1, np.int64), at, 500 * MIN)[0] == 50.0
    assert aggregate(flat, "mean", np.zeros(1, np.int64), at, 500 * MIN)[0] == 0.1
    with_it = aggregate(flat, "sum", np.zeros(1, np.int64), at, 600 * MIN)[0]
    assert with_it == np.float64(1e15) + 59.9 or abs(with_it - (1e15 + 59.9)) <= 0.25


def test_tenths_sum_exactly_across_series():
    sid = np.repeat(np.arange(3, dtype=np.int64), 500)
    ts = np.tile(T0 + np.arange(500, dtype=np.int64) * MIN, 3)
    flat = Flat(sid, ts, np.full(1500, 0.1))
    got = aggregate(flat, "sum", np.arange(3, dtype=np.int64), np.full(3, ts[499]), 500 * MIN)
    assert got.tolist() == [50.0, 50.0, 50.0]
