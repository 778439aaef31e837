"""The fast paths of the detectors give the numbers of the reference paths.

The flattened forests (forest.py) equal scikit-learn's ``score_samples`` exactly; the
vectorised envelope scoring of iforest and the ensemble equals scoring station by station
(within 1e-12: only the float rounding of window sums may differ) on random envelopes
with late stations, replays, duplicate timestamps, missing values and a model reload.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from tests.unit.test_model_detectors import DAY, _random_envelopes, train_frame
from yujing.models import make_detector
from yujing.models.ensemble import behind
from yujing.models.forest import ForestBank, float32_below, float32_key
from yujing.models.scoring import Scorer


def test_forest_bank_equals_score_samples_for_several_forests():
    rng = np.random.default_rng(0)
    forests = [IsolationForest(n_estimators=30, max_samples=64 + 32 * i, random_state=i)
               .fit(rng.normal(size=(400, 6)) * (i + 1)) for i in range(4)]
    bank = ForestBank(forests)
    X = np.concatenate((rng.normal(size=(300, 6)) * 3, rng.standard_cauchy((100, 6))))
    key = rng.integers(0, 4, X.shape[0])
    want = np.empty(X.shape[0])
    for k, f in enumerate(forests):
        want[key == k] = -f.score_samples(X[key == k])
    assert np.array_equal(bank.raw(X, key), want)
    # a feature equal to a threshold, as float32, splits as in scikit-learn
    tree = forests[0].estimators_[0].tree_
    node = int(np.flatnonzero(tree.children_left >= 0)[0])
    edge = np.zeros((2, 6))
    edge[:, tree.feature[node]] = [np.float32(tree.threshold[node]), tree.threshold[node]]
    assert np.array_equal(bank.raw(edge, np.zeros(2, int)), -forests[0].score_samples(edge))


def test_forest_bank_of_single_leaf_trees_equals_score_samples():
    """Constant training rows give trees of one node: the walk has no level at all."""
    forest = IsolationForest(n_estimators=10, random_state=0).fit(np.ones((50, 6)))
    bank = ForestBank([forest, forest])
    X = np.random.default_rng(2).normal(size=(20, 6))
    assert bank.depth == 0
    assert np.array_equal(bank.raw(X, np.zeros(20, int)), -forest.score_samples(X))


def test_float32_below_splits_every_float32_alike():
    rng = np.random.default_rng(1)
    t = rng.normal(size=2000) * 10.0 ** rng.integers(-5, 5, 2000)
    x = np.concatenate((t.astype(np.float32), np.nextafter(t.astype(np.float32), np.float32(np.inf)),
                        np.nextafter(t.astype(np.float32), np.float32(-np.inf))))
    below = float32_below(t)
    assert (below.astype(np.float64) <= t).all()
    for shift in range(3):
        xs = x[shift * 2000:(shift + 1) * 2000]
        assert np.array_equal(xs > t, xs > below)


def test_float32_key_orders_as_the_floats():
    """The walk compares integer keys: every pair of float32 (zeros of both signs,
    subnormals, infinities, neighbours) must compare as the floats do."""
    rng = np.random.default_rng(3)
    f32 = np.float32
    special = np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1.1754942e-38,
                        -1.1754942e-38, 3.4028235e38, -3.4028235e38], np.float32)
    x = np.concatenate((special, (rng.normal(size=600) * 10.0 ** rng.integers(-30, 30, 600))
                        .astype(np.float32)))
    with np.errstate(over="ignore"):  # the neighbours of the largest floats are infinite
        x = np.concatenate((x, np.nextafter(x, f32(np.inf)), np.nextafter(x, f32(-np.inf))))
    k = float32_key(x)
    assert k.dtype == np.int64 and k.min() >= -2 ** 31 and k.max() < 2 ** 31
    assert np.array_equal(x[:, None] > x[None, :], k[:, None] > k[None, :])


def test_forest_bank_splits_at_zero_and_at_thresholds_as_score_samples():
    """Features that sit on a threshold, on zero of either sign, or one float32 away."""
    rng = np.random.default_rng(5)
    X = rng.integers(-2, 3, size=(300, 3)).astype(np.float64) * 0.5
    forest = IsolationForest(n_estimators=40, random_state=1).fit(X)
    thresholds = np.concatenate([e.tree_.threshold[e.tree_.children_left >= 0]
                                 for e in forest.estimators_])
    t32 = thresholds.astype(np.float32)
    probe = np.concatenate((t32, np.nextafter(t32, np.float32(np.inf)),
                            np.nextafter(t32, np.float32(-np.inf)), [0.0, -0.0])).astype(np.float64)
    Q = np.stack([rng.permutation(probe) for _ in range(3)], axis=1)
    bank = ForestBank([forest])
    assert np.array_equal(bank.raw(Q, np.zeros(Q.shape[0], int)), -forest.score_samples(Q))


def test_behind_is_a_concatenation_per_row():
    rng = np.random.default_rng(6)
    n = np.array([3, 1, 7, 2])
    row = np.repeat(np.arange(4), n)
    q = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    for tails, new in ((rng.normal(size=(4, 5)), rng.normal(size=n.sum())),
                       (rng.integers(0, 9, (4, 5, 3)), rng.integers(10, 19, (n.sum(), 3)))):
        got = behind(list(tails), new, row, q, int(n.max()))
        assert got.dtype == tails.dtype
        for r in range(4):
            whole = np.concatenate((tails[r], new[row == r]))
            assert np.array_equal(got[r, :5 + n[r]], whole)
            assert np.array_equal(got[r, n[r]:n[r] + 5], whole[-5:])
            assert not got[r, 5 + n[r]:].any()  # zeros after a series' new items


@pytest.mark.parametrize("kind", ["iforest", "ensemble", "ensemble-plain"])
def test_vectorised_envelopes_equal_the_per_station_path(kind):
    rng = np.random.default_rng(4)
    stations = 8
    hist = [train_frame(DAY * 2, station=f"g{k:02d}").assign(
        value=lambda d, k=k: d["value"] + 0.1 * k) for k in range(stations)]
    small = {"n_estimators": 20}
    if kind == "iforest":
        det = make_detector("iforest", **small)
    else:  # a short record keeps the test quick; the layout is the same at 1000
        det = make_detector("ensemble", record=0 if kind == "ensemble-plain" else 40,
                            members={"iforest": small})
    det.fit(pd.concat(hist), groups={"g00": "town", "g01": "town"})
    batch, each = Scorer(det), Scorer(det, batch=False)
    fast_rows = []
    name = "score_tails" if kind == "iforest" else "_score_fast"
    original = getattr(det, name)

    def counted(states, *args):
        fast_rows.append(len(states))
        return original(states, *args)

    fast = 0
    for e, env in enumerate(_random_envelopes(rng, stations, 26, 300)):
        if e == 18:  # a reloaded model: states keep their readings, not their caches
            batch.set_model(det)
            each.set_model(det)
        fast += sum(s.v.size >= det.history for s in batch.states.values())
        setattr(det, name, counted)
        a = batch.score_envelope(*env)
        setattr(det, name, original)
        b = each.score_envelope(*env)
        assert np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert fast > stations * 5 and sum(fast_rows) > stations * 5  # the fast path ran
    for name, st in batch.states.items():
        assert np.array_equal(st.ts, each.states[name].ts)
        assert np.array_equal(st.v, each.states[name].v)


def test_ensemble_envelopes_at_full_record_equal_the_per_station_path_exactly():
    """The ensemble's one-matrix path (the members on one stations × readings array, the
    spike member and the forest sharing the level window's median and scale) at the
    default record of 1000 gives the per-station scores bit for bit, and leaves the same
    states: readings, the members' z cache and the spike residuals. The envelopes carry
    late stations, replays, duplicate timestamps and missing values; a reload midway drops
    the caches."""
    rng = np.random.default_rng(11)
    stations = 5
    hist = [train_frame(DAY * 2, station=f"g{k:02d}").assign(
        value=lambda d, k=k: d["value"] + 0.2 * k) for k in range(stations)]
    det = make_detector("ensemble", members={"iforest": {"n_estimators": 15}})
    det.fit(pd.concat(hist), groups={"g03": "town", "g04": "town"})
    batch, each = Scorer(det), Scorer(det, batch=False)
    fast_at = []
    original = det._score_fast

    def counted(states, *args):
        fast_at.append(e)
        return original(states, *args)

    det._score_fast = counted
    for e, env in enumerate(_random_envelopes(rng, stations, 40, 250)):
        if e == 33:
            batch.set_model(det)
            each.set_model(det)
        a = batch.score_envelope(*env)
        del det._score_fast  # the per-station path must not take the fast one
        b = each.score_envelope(*env)
        det._score_fast = counted
        np.testing.assert_array_equal(a, b)
    assert len(fast_at) > 5 and fast_at[-1] > 33  # the fast path ran, after the reload too
    for name, st in batch.states.items():
        other = each.states[name]
        for field in ("ts", "v", "z", "r"):
            np.testing.assert_array_equal(getattr(st, field), getattr(other, field))
