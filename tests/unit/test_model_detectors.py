"""Each detector scores an injected anomaly above the normal readings around it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

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



def _score_of(z: np.ndarray) -> np.ndarray:
    return 1.0 - 2.0 ** -np.asarray(z, dtype=np.float64)


def test_fading_record_is_beaten_by_less_as_it_ages():
    memory, age = 400, 300
    bar = 8.0 * np.exp(-age / memory)       # the record of z 8, faded over 300 readings
    for z, alarms in ((bar * 1.01, True), (bar * 0.99, False)):
        s = np.zeros(1000)
        s[100], s[100 + age] = _score_of(8.0), _score_of(z)
        out = RecordFilter(memory, floor=1.0, fading=True)(s)
        assert out[100] > 0.99
        assert bool(out[100 + age] > 0) is alarms
        assert np.count_nonzero(out) == 1 + alarms


@settings(max_examples=40, deadline=None)
@given(seed=hs.integers(0, 10_000), memory=hs.integers(1, 3000),
       cuts=hs.lists(hs.integers(0, 2000), max_size=10))
def test_fading_record_filter_streams_like_batch(seed, memory, cuts):
    rng = np.random.default_rng(seed)
    s = _score_of(rng.exponential(1.0, 2000))
    whole = RecordFilter(memory, floor=1.5, fading=True)(s)
    f = RecordFilter(memory, floor=1.5, fading=True)
    parts = np.concatenate([f(part) for part in np.split(s, sorted(cuts))])  # empty ones too
    np.testing.assert_allclose(parts, whole, rtol=1e-12, atol=0)


def test_evaluate_streams_a_fading_record_like_filtering_the_plain_scores():
    from yujing.models import evaluate
    rng = np.random.default_rng(1)
    ts = np.arange(3000, dtype=np.int64) * 300_000
    v = 10 + rng.normal(0, 0.5, ts.size)
    v[2000] += 9.0
    s = evaluate.Series("cat/s.csv", ts, v, [(1990, 2010)])
    plain = evaluate.stream_scores(lambda: make_detector("spike"), s, chunk=137)
    faded = evaluate.stream_scores(lambda: make_detector("spike"), s, chunk=137,
                                   record=300, record_floor=1.0, record_fading=True)
    assert np.allclose(faded, RecordFilter(300, 1.0, fading=True)(plain), rtol=1e-12, atol=0)
    assert faded[2000] > 0.5
    assert not np.array_equal(faded > 0, RecordFilter(300, 1.0)(plain) > 0)


# -- vectorised scoring of mixed envelopes ----------------------------------------------------

def _random_envelopes(rng, stations: int, n_env: int, size: int):
    """Envelopes of mixed stations in shuffled arrival order: stations that join late,
    replays of old readings, duplicate timestamps, missing values, another metric."""
    names = [f"g{k:02d}" for k in range(stations)] + ["stranger"]
    clock = np.zeros(len(names), dtype=np.int64)
    start = rng.integers(0, 6, len(names))  # envelope at which each station starts reporting
    level = rng.uniform(0.5, 5.0, len(names))
    out = []
    for e in range(n_env):
        live = np.flatnonzero(start <= e)
        si = rng.choice(live, size)
        ts = np.empty(size, dtype=np.int64)
        for k in range(size):
            s = si[k]
            if clock[s] and rng.random() < 0.03:  # a replay of an older reading
                ts[k] = T0 + STEP * int(rng.integers(0, clock[s]))
            else:
                clock[s] += int(rng.random() > 0.05)  # 5 %: the same timestamp again
                ts[k] = T0 + STEP * int(clock[s])
        v = level[si] + 0.3 * np.sin(ts / 8.64e7 * 2 * np.pi) + rng.normal(0, 0.05, size)
        v[rng.random(size) < 0.1] += rng.normal(0, 1.0, 1)  # jumps and spikes
        v[rng.random(size) < 0.01] = np.nan
        mi = (rng.random(size) < 0.05).astype(int)  # a few readings of another metric
        # the worker's envelopes are in arrival order: by time per station, stations mixed
        order = np.lexsort((ts, rng.permutation(size)))
        if e % 3 == 0:
            order = rng.permutation(size)
        out.append((names, si[order], ["water_level_m", "rain_mm"], mi[order], ts[order],
                    v[order]))
    return out


@pytest.mark.parametrize("kind", ["baseline", "spike"])
@pytest.mark.parametrize(("seed", "stations", "size"), [(0, 12, 400), (1, 12, 400), (2, 40, 60)])
def test_vectorised_envelope_scoring_equals_the_per_station_path(kind, seed, stations, size):
    rng = np.random.default_rng(seed)
    hist = [train_frame(DAY * 2, station=f"g{k:02d}").assign(
        value=lambda d, k=k: d["value"] + 0.1 * k) for k in range(stations)]
    det = make_detector(kind).fit(pd.concat(hist), groups={"g00": "town", "g01": "town"})
    batch, each = Scorer(det), Scorer(det, batch=False)
    for e, env in enumerate(_random_envelopes(rng, stations, 30 if size > 100 else 120, size)):
        if e == 20:  # a reloaded model: states keep their readings, not their caches
            batch.set_model(det)
            each.set_model(det)
        a = batch.score_envelope(*env)
        b = each.score_envelope(*env)
        assert np.array_equal(a, b, equal_nan=True)
        assert np.isnan(a[env[3] == 1]).all() and np.isfinite(a[env[3] == 0]).all()
    assert batch.states.keys() == each.states.keys()
    for name, st in batch.states.items():
        assert np.array_equal(st.ts, each.states[name].ts)
        assert np.array_equal(st.v, each.states[name].v)


def test_vectorised_spike_reaches_the_steady_state_and_matches_score_series():
    det = fit("spike")
    ts, v = probe()
    sc = Scorer(det)
    got = []
    for a in range(0, ts.size, 37):  # one station, envelope after envelope
        got.append(sc.score_envelope(["s1"], np.zeros(ts[a:a + 37].size, int),
                                     ["water_level_m"], np.zeros(ts[a:a + 37].size, int),
                                     ts[a:a + 37], v[a:a + 37]))
    np.testing.assert_allclose(np.concatenate(got), score_series(det, ts, v, "s1"), atol=1e-9)


def test_spike_state_cache_survives_missing_values_and_copies():
    det = fit("spike")
    ts, v = probe()
    v = v.copy()
    v[[130, 131, 132, 300]] = np.nan
    whole = score_series(det, ts, v, "s1")
    state = det.new_state("s1")
    parts = [det.score(ts[a:b], v[a:b], state) for a, b in
             ((0, 130), (130, 133), (133, 134), (134, 300), (300, 301), (301, ts.size))]
    assert state.r.size == det.cusum_span
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-12)
    twin = state.copy()
    twin.r[:] = 99.0
    assert (state.r != 99.0).all()


def test_median_rows_is_numpys_median():
    from yujing.models.features import median_rows
    rng = np.random.default_rng(2)
    for m in (1, 2, 7, 96, 97):
        x = np.round(rng.normal(size=(50, m)), 1)  # with ties
        assert np.array_equal(median_rows(x), np.median(x, axis=1))


def test_robust_rows_are_numpys_median_and_mad():
    """One sorted copy serves both medians: the numbers of np.median on the window and on
    its absolute deviations, and the mean deviation (in window order) on tied rows."""
    from yujing.models.features import MAD_TO_SIGMA, MEAN_AD_TO_SIGMA, robust_rows
    rng = np.random.default_rng(3)
    for m in (1, 2, 7, 96, 97):
        for x in (rng.normal(size=(60, m)) * 10.0 ** rng.integers(-3, 4, (60, 1)) + 1e3,
                  np.round(rng.normal(size=(60, m)), 0),  # quantised: tied rows
                  np.full((3, m), 2.5)):
            win = x.copy()
            med, scale = robust_rows(win)
            assert np.array_equal(win, x)  # the window is not touched
            want_med = np.median(x, axis=1)
            dev = np.abs(x - want_med[:, None])
            want = MAD_TO_SIGMA * np.median(dev, axis=1)
            tied = want == 0
            want[tied] = MEAN_AD_TO_SIGMA * dev[tied].mean(axis=1)
            assert np.array_equal(med, want_med)
            assert np.array_equal(scale, want)
        assert tied.any()


# -- the ensemble ----------------------------------------------------------------------------

ENS = {"members": {"iforest": {"n_estimators": 30}}}


def test_ensemble_is_the_max_of_record_filtered_member_scores():
    det = make_detector("ensemble", seed=3, record=300, **ENS).fit(train_frame())
    ts, v = probe()
    v = v.copy()
    v[300] += 0.6
    v[450:] += 1.5  # more unusual than the spike, so a new record
    got = score_series(det, ts, v, "s1")
    want = np.zeros(ts.size)
    for kind, member in det.members.items():
        member.params = {k: p[kind] for k, p in det.params.items()}
        plain = score_series(member, ts, v, "s1")
        want = np.maximum(want, RecordFilter(300, det.floors[kind])(plain))
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert got[300] > 0.5 and got[450:453].max() > 0.5
    assert np.count_nonzero(got[310:440] > 0.5) == 0  # quiet between the two anomalies


def test_ensemble_plain_scores_with_record_zero():
    det = make_detector("ensemble", seed=3, record=0, **ENS).fit(train_frame())
    assert not det.alarm_style and det.history == 121
    ts, v = probe()
    got = score_series(det, ts, v, "s1")
    want = np.zeros(ts.size)
    for kind, member in det.members.items():
        member.params = {k: p[kind] for k, p in det.params.items()}
        want = np.maximum(want, score_series(member, ts, v, "s1"))
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_ensemble_rebuilds_its_cache_from_the_readings_of_a_state():
    det = make_detector("ensemble", seed=3, record=200, **ENS).fit(train_frame())
    assert det.history == 200 + 121 and det.alarm_style
    ts, v = probe()
    v = v.copy()
    v[500] += 0.5
    whole = score_series(det, ts, v, "s1")
    state = det.new_state("s1")
    det.score(ts[:400], v[:400], state)
    assert state.z.shape == (200, 3) and state.v.size == det.history
    # a reloaded model (Scorer.set_model, a refit) starts from the readings alone
    bare = det.new_state("s1")
    bare.ts, bare.v = state.ts.copy(), state.v.copy()
    np.testing.assert_allclose(det.score(ts[400:], v[400:], bare), whole[400:], atol=1e-12)
    np.testing.assert_allclose(det.score(ts[400:], v[400:], state), whole[400:], atol=1e-12)
    sc = Scorer(det)
    first = sc.score_envelope(["s1"], np.zeros(400, int), ["water_level_m"],
                              np.zeros(400, int), ts[:400], v[:400])
    sc.set_model(det)
    rest = sc.score_envelope(["s1"], np.zeros(ts.size - 400, int), ["water_level_m"],
                             np.zeros(ts.size - 400, int), ts[400:], v[400:])
    np.testing.assert_allclose(np.r_[first, rest], whole, atol=1e-12)


def test_ensemble_hyper_parameters_round_trip_and_bad_members_fail(tmp_path):
    from yujing.models import ModelKey, load_model
    key = ModelKey.from_text("detectors-test-key-" + "0" * 32, "test")
    det = make_detector("ensemble", seed=5, record=50, floors={"iforest": 1.5},
                        members={"spike": {"window": 48}, "iforest": {"n_estimators": 10}})
    det.fit(train_frame())
    back = load_model(det.save(tmp_path / "e", key), key)
    assert back.floors == {"baseline": 2.0, "spike": 2.0, "iforest": 1.5}
    assert back.members["spike"].window == 48
    assert back.history == 50 + 96  # record + IsolationForest's window (the longest)
    assert back.meta["hyper"]["members"]["iforest"]["n_estimators"] == 10
    ts, v = probe()
    assert np.array_equal(score_series(back, ts, v, "s1"), score_series(det, ts, v, "s1"))
    with pytest.raises(ValueError, match="unknown member"):
        make_detector("ensemble", floors={"prophet": 1.0})
