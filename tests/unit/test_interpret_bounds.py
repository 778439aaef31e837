"""The interpreter finds a window's bounds once per evaluation and shares them between the
aggregates of that window (spread and count, max and min): every aggregate must equal the
same aggregate computed on its own (``windows.aggregate``), on random series, in any order
of evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.rules import tree as ex
from yujing.rules import windows as wn
from yujing.rules.interpret import Interpreter, score_with_model
from yujing.rules.lookup import StationLookup
from yujing.rules.series import SeriesStore

MIN = 60_000
T0 = wn.EPOCH + 400 * 86_400_000


def random_store(rng: np.random.Generator) -> tuple[SeriesStore, np.ndarray, np.ndarray]:
    """Two metrics at five stations, gaps and repeated values, and evaluation points."""
    store = SeriesStore(0, lambda station, metric: 10**12)
    for name in ("a", "b", "c", "d", "e"):
        store.station(name)
    for metric in ("x", "y"):
        store.metric(metric)
    n = 600
    st = rng.integers(0, 4, n)  # station e has no readings: its windows are empty
    m = rng.integers(0, 2, n)
    t = T0 + rng.integers(0, 6 * 60, n) * MIN
    v = rng.choice([0.0, 1.0, 2.5, -3.0], n) + (rng.random(n) < 0.5) * rng.random(n)
    sid = store.ids(st, m)
    store.insert(sid, t, v)
    pst = np.repeat(np.arange(5), 30)
    pt = T0 + np.tile(np.sort(rng.integers(0, 7 * 60, 30)), 5) * MIN
    return store, pst, pt


@pytest.mark.parametrize("seed", range(6))
def test_shared_bounds_give_the_aggregates_computed_alone(seed):
    rng = np.random.default_rng(seed)
    store, pst, pt = random_store(rng)
    needed = np.arange(len(store))
    flat = store.flat(needed, np.full(needed.size, T0, np.int64), {})
    interp = Interpreter(store, StationLookup(None, store.station_names), 0, None,
                         score_with_model, "UTC")
    nodes = [ex.Agg(fn, metric, w) for fn in wn.AGGREGATES for metric in ("x", "y", "z")
             for w in (MIN, 10 * MIN, 2 * 60 * MIN, ex.UNBOUNDED_MS)]
    rng.shuffle(nodes)
    ev = interp.evaluator(flat, pst, pt, {})
    for node in nodes:
        sid = store.lookup(pst, node.metric)
        alone = wn.aggregate(flat, node.fn, sid, pt, node.window_ms)
        np.testing.assert_array_equal(ev(node), alone, err_msg=repr(node))
    assert sum(isinstance(k, tuple) and k[0] == "bounds" for k in ev.memo) == 3 * 4
