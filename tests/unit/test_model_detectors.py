"""Each detector scores an injected anomaly above the normal readings around it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yujing.models import make_detector
from yujing.models.scoring import RecordFilter, Scorer, score_series

STEP = 300_000
T0 = 1_735_660_800_000
DAY = 288


def daily(n: int, seed: int, noise: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n, dtype=np.int64) * STEP
    return ts, 3.0 + 0.5 * np.sin(2 * np.pi * np.arange(n) / DAY) + rng.normal(0, noise, n)


def train_frame(n: int = DAY * 7, station: str = "s1") -> pd.DataFrame:
    ts, v = daily(n, seed=1)
    return pd.DataFrame({"ts": ts, "station": station, "metric": "water_level_m", "value": v})


def fit(kind: str, **hyper):
    extra = {"n_estimators": 50} if kind == "iforest" else {}
    return make_detector(kind, seed=3, **extra, **hyper).fit(train_frame())


def probe(seed: int = 9) -> tuple[np.ndarray, np.ndarray]:
    ts, v = daily(DAY * 2, seed=seed)
    return ts + DAY * 7 * STEP, v


def test_baseline_flags_a_value_wrong_for_its_hour():
    det = fit("baseline")
    ts, v = probe()
    v = v.copy()
    i = DAY // 4  # the daily peak: a trough value here is wrong for the hour, not for the day
    v[i] = 3.0 - 0.5
    s = score_series(det, ts, v, station="s1")
    assert s[i] > 0.9
    assert s[i] > np.percentile(np.delete(s, i), 99.5)
    assert np.median(s) < 0.3


def test_baseline_falls_back_to_hour_of_day_then_overall_with_little_history():
    short = train_frame(DAY // 2)  # half a day: most hours of the week never seen
    det = make_detector("baseline").fit(short)
    ts, v = probe()
    s = score_series(det, ts, v)
    assert np.isfinite(s).all()


def test_spike_detector_flags_a_spike_and_a_sudden_rise():
    det = fit("spike")
    ts, v = probe()
    v = v.copy()
    v[200] += 0.4  # spike
    v[400:] += 0.3  # level shift (sudden rise that stays)
    s = score_series(det, ts, v)
    normal = np.r_[s[120:195], s[210:395]]
    assert s[200] > 0.9 and s[200] > normal.max()
    assert s[400:403].max() > 0.9 and s[400:403].max() > normal.max()


def test_spike_detector_cusum_sees_a_small_sustained_shift():
    rng = np.random.default_rng(4)
    n = DAY * 3
    ts = T0 + np.arange(n, dtype=np.int64) * STEP
    v = 1.0 + rng.normal(0, 0.02, n)  # a steady level: a reservoir between rains
    det = make_detector("spike").fit(pd.DataFrame({"ts": ts[:DAY * 2], "station": "r",
                                                   "metric": "water_level_m",
                                                   "value": v[:DAY * 2]}))
    w = v.copy()
    w[700:] += 0.05  # 2.5 noise sigmas: no single reading stands out much
    s = score_series(det, ts, w)
    assert s[700:730].max() > 0.6
    assert s[700:730].max() > np.percentile(s[300:700], 99)


def test_iforest_flags_a_spike_and_a_burst_of_noise():
    det = fit("iforest")
    ts, v = probe()
    v = v.copy()
    v[250] += 0.5
    rng = np.random.default_rng(0)
    v[450:470] += rng.normal(0, 0.3, 20)
    s = score_series(det, ts, v)
    normal = s[120:240]
    assert s[250] > 0.6 and s[250] > normal.max()
    assert s[450:470].max() > normal.max()


@pytest.mark.parametrize("kind", ["baseline", "spike", "iforest"])
def test_per_group_models_use_the_group_and_pool_for_strangers(kind):
    a = train_frame(station="a")
    b = train_frame(station="b").assign(value=lambda d: d["value"] * 10)
    extra = {"n_estimators": 20} if kind == "iforest" else {}
    det = make_detector(kind, **extra).fit(pd.concat([a, b]), groups={"a": "low", "b": "high"})
    assert set(det.params) == {"low", "high", "*"}
    assert det.new_state("a").key == "low"
    assert det.new_state("b").key == "high"
    assert det.new_state("c").key == "*"
    assert det.meta["training"]["per"] == "group"


def test_scorer_groups_an_envelope_by_station_and_matches_score_series():
    det = fit("spike")
    ts, v = probe()
    ts2, v2 = probe(seed=11)
    whole1 = score_series(det, ts, v, station="s1")
    whole2 = score_series(det, ts2, v2, station="s2")
    sc = Scorer(det)
    got1, got2 = [], []
    rng = np.random.default_rng(5)
    for a in range(0, ts.size, 50):
        b = a + 50
        # an envelope: two stations interleaved, another metric mixed in, arrival shuffled
        n = min(b, ts.size) - a
        si = np.r_[np.zeros(n, int), np.ones(n, int), np.zeros(3, int)]
        mi = np.r_[np.zeros(2 * n, int), np.ones(3, int)]
        tt = np.r_[ts[a:b], ts2[a:b], ts[a:a + 3]]
        vv = np.r_[v[a:b], v2[a:b], [1.0, 2.0, 3.0]]
        perm = rng.permutation(tt.size)
        out = np.empty(tt.size)
        out[perm] = sc.score_envelope(["s1", "s2"], si[perm], ["water_level_m", "rain_mm"],
                                      mi[perm], tt[perm], vv[perm])
        assert np.isnan(out[2 * n:]).all()
        got1.append(out[:n])
        got2.append(out[n:2 * n])
    np.testing.assert_allclose(np.concatenate(got1), whole1, atol=1e-9)
    np.testing.assert_allclose(np.concatenate(got2), whole2, atol=1e-9)


def test_scorer_replay_changes_nothing():
    det = fit("spike")
    ts, v = probe()
    sc = Scorer(det)
    first = sc.score_envelope(["s1"], np.zeros(100, int), ["water_level_m"], np.zeros(100, int),
                              ts[:100], v[:100])
    state_before = sc.states["s1"].copy()
    again = sc.score_envelope(["s1"], np.zeros(100, int), ["water_level_m"], np.zeros(100, int),
                              ts[:100], v[:100])
    assert np.isfinite(again).all()
    assert np.array_equal(sc.states["s1"].ts, state_before.ts)
    nxt = sc.score_envelope(["s1"], np.zeros(100, int), ["water_level_m"], np.zeros(100, int),
                            ts[100:200], v[100:200])
    np.testing.assert_allclose(np.r_[first, nxt], score_series(det, ts[:200], v[:200], "s1"),
                               atol=1e-9)


def test_score_series_refuses_unsorted_input():
    det = fit("baseline")
    with pytest.raises(ValueError, match="sorted"):
        score_series(det, np.array([2, 1]), np.array([1.0, 1.0]))


def test_record_filter_alarms_once_per_anomaly_and_streams_like_batch():
    s = np.full(3000, 0.2)
    s[1000:1100] = 0.95  # one long anomaly
    s[2500] = 0.99  # a later, stronger one
    whole = RecordFilter(memory=500, floor=1.0)(s)
    assert whole[1000] > 0.5 and (whole[1001:1100] == 0).all()
    assert whole[2500] > 0.5
    assert np.count_nonzero(whole) == 2
    f = RecordFilter(memory=500, floor=1.0)
    parts = np.concatenate([f(s[a:a + 123]) for a in range(0, s.size, 123)])
    assert np.array_equal(parts, whole)
