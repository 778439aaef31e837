"""Issue 16's fast paths give the numbers of the reference paths.

IsolationForest (and the ensemble's forest member) score one series through the flattened
forests (forest.py), with scikit-learn's numbers bit for bit.

The residual station model scores an envelope's new rows of every station at once
(``StationResidual.score_new_rows``); the reference is the generic station path
(``station_batch``: features over each station's look-back block, scored station by
station) and the one-pass ``score_station``. Seeded stations of three sensors driven by
one load, with faults (a stuck sensor, a gap longer than the age limit, missing
values), stations joining late, a grouped pair and a reading of another metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.test_model_detectors import DAY, daily, train_frame
from tests.unit.test_model_station import METRICS, STEP, T0, station_frame
from yujing.models import make_detector
from yujing.models.ensemble import window_max
from yujing.models.forest import ForestBank
from yujing.models.scoring import StationScorer
from yujing.models.station import station_series

NAMES = [f"dc-{k}" for k in range(6)]


def faulty(n: int, seed: int) -> pd.DataFrame:
    """Six stations; dc-1 stuck, dc-2 loses a sensor for 20 rows, dc-3 joins late, dc-4
    has missing values."""
    frame = station_frame(n, seed=seed, stations=NAMES)
    rng = np.random.default_rng(seed)
    frame["value"] += rng.normal(0, 1e-3, len(frame))
    st, m, row = frame["station"], frame["metric"], (frame["ts"] - T0) // STEP
    frame.loc[(st == "dc-1") & (m == "airflow_m3h") & (row >= 200) & (row < 260), "value"] = 900.0
    frame = frame[~((st == "dc-2") & (m == "filter_dp_kpa") & (row >= 150) & (row < 170))]
    frame = frame[~((frame["station"] == "dc-3") & ((frame["ts"] - T0) // STEP < 120))]
    missing = (frame["station"] == "dc-4") & (rng.random(len(frame)) < 0.03)
    frame.loc[missing, "value"] = np.nan
    other = frame.sample(40, random_state=seed).assign(metric="other", value=1.0)
    return pd.concat([frame, other]).sort_values(["ts", "station", "metric"], kind="stable")


def run(model, frame: pd.DataFrame, cuts: np.ndarray) -> np.ndarray:
    """The worker's path: envelopes cut between timestamps, one StationScorer."""
    metrics = list(METRICS) + ["other"]
    si = frame["station"].map({n: i for i, n in enumerate(NAMES)}).to_numpy()
    mi = frame["metric"].map({m: i for i, m in enumerate(metrics)}).to_numpy()
    ts, v = frame["ts"].to_numpy(np.int64), frame["value"].to_numpy()
    scorer = StationScorer(model)
    bounds = np.searchsorted(ts, T0 + cuts * STEP)
    return np.concatenate([scorer.score_envelope(NAMES, si[a:b], metrics, mi[a:b], ts[a:b], v[a:b])
                           for a, b in zip(bounds[:-1], bounds[1:])])


@pytest.fixture(scope="module")
def residual():
    hist = station_frame(1200, seed=1, stations=NAMES)
    return make_detector("residual", seed=0).fit(hist, groups={"dc-0": "pair", "dc-5": "pair"})


@pytest.mark.parametrize("seed", [3, 4])
def test_residual_envelopes_equal_the_station_path_and_one_pass(residual, seed, monkeypatch):
    frame = faulty(400, seed)
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate(([0, 400], rng.integers(1, 400, 150))))
    calls = []
    original = residual.score_new_rows
    monkeypatch.setattr(residual, "score_new_rows",
                        lambda *a: calls.append(a[2].size) or original(*a))
    fast = run(residual, frame, cuts)
    monkeypatch.setattr(residual, "score_new_rows", None)  # the generic station path
    generic = run(residual, frame, cuts)
    assert sum(calls) > 1000  # the fast path scored most rows
    assert np.array_equal(np.isnan(fast), np.isnan(generic))
    ok = ~np.isnan(fast)
    np.testing.assert_allclose(fast[ok], generic[ok], rtol=1e-9, atol=0)
    assert (fast[ok] > 0.5).sum() > 20  # the faults score: not a comparison of zeros
    # and both are the one-pass scores (the cuts never split a timestamp)
    metric = frame["metric"].to_numpy()
    for name, series in station_series(frame, list(METRICS)).items():
        row_ts, want = residual.score_station(series, residual.new_state(name))
        sel = ((frame["station"] == name).to_numpy() & (metric != "other")
               & np.isfinite(frame["value"].to_numpy()))
        i = np.searchsorted(row_ts, frame["ts"].to_numpy()[sel])
        np.testing.assert_allclose(fast[sel], want[i], rtol=1e-9, atol=0)


@pytest.mark.parametrize("kind", ["iforest", "ensemble"])
def test_one_series_walks_the_forest_bank_with_scikit_learns_numbers(kind, monkeypatch):
    """``score`` of one station (the worker's StreamScorer calls it per station) walks the
    flattened forests; the scores are those of scikit-learn's ``score_samples``, bit for bit."""
    hist = [train_frame(DAY * 2, station=f"g{k}").assign(value=lambda d, k=k: d["value"] + k)
            for k in range(3)]
    small = {"n_estimators": 20}
    det = (make_detector("iforest", **small) if kind == "iforest" else
           make_detector("ensemble", record=40, members={"iforest": small})).fit(pd.concat(hist))
    forest = det if kind == "iforest" else det.members["iforest"]
    ts, v = daily(DAY * 2, seed=5)
    v[[100, 300]] += [2.0, -3.0]
    walked = []
    original = ForestBank.raw
    monkeypatch.setattr(ForestBank, "raw", lambda self, X, key: walked.append(key.size)
                        or original(self, X, key))
    got = {s: det.score(ts, v, det.new_state(s)) for s in ("g1", "unknown")}
    assert sum(walked) >= 2 * (ts.size - 200)  # both stations' rows went through the bank
    monkeypatch.setattr(forest, "_raw", lambda X, params: -params["forest"].score_samples(X))
    for station, scores in got.items():
        assert np.array_equal(scores, det.score(ts, v, det.new_state(station)))
    assert (got["g1"] > 0.5).sum() >= 2


@pytest.mark.parametrize(("rows", "k"), [(1000, 1000), (1005, 1000), (2999, 1000), (10, 1),
                                         (57, 7), (40, 40)])
def test_the_ensembles_window_maximum_is_the_sliding_maximum(rows, k):
    x = np.random.default_rng(rows).exponential(size=(rows, 3))
    x[::17] = 0.0
    want = np.lib.stride_tricks.sliding_window_view(x, k, axis=0).max(axis=2)
    assert np.array_equal(window_max(x, k), want)
