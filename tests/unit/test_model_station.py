"""Station models (pca T² + Q, mcd robust Mahalanobis) and calibrated alarms (alarm.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from yujing.models import ModelKey, SignatureError, load_model, make_detector
from yujing.models.alarm import conformal_threshold, fit_calibrated, held_out_scores, sidak
from yujing.models.station import station_series
from yujing.rules.engine import Engine
from yujing.rules.schema import Rule

STEP = 600_000  # 10 minutes
T0 = 1_735_660_800_000  # 2025-01-01T00:00:00Z
KEY = ModelKey.from_text("station-test-key-" + "0" * 32, "test")
METRICS = {"inlet_temp_c": (80.0, 6.0), "filter_dp_kpa": (1.2, 0.25), "airflow_m3h": (900.0, 60.0)}
STATION_KINDS = ["mcd", "pca", "residual"]


def station_frame(n: int, seed: int, stations=("dc-1", "dc-2"), start: int = T0) -> pd.DataFrame:
    """Three sensors of a dust collector driven by one load factor (AR(1)) plus noise."""
    rng = np.random.default_rng(seed)
    ts = start + np.arange(n, dtype=np.int64) * STEP
    parts = []
    for station in stations:
        load = np.zeros(n)
        for i in range(1, n):
            load[i] = 0.97 * load[i - 1] + rng.normal(0, 0.25)
        for metric, (level, scale) in METRICS.items():
            v = level + scale * (load + rng.normal(0, 0.15, n))
            parts.append(pd.DataFrame({"ts": ts, "station": station, "metric": metric, "value": v}))
    return pd.concat(parts, ignore_index=True)


def decouple(frame: pd.DataFrame, station: str, metric: str, a: int, b: int) -> pd.DataFrame:
    """The metric's readings a..b of the station lose their link to the load: held at their
    typical value plus noise (a sensor fault that keeps a plausible level)."""
    out = frame.copy()
    sel = np.flatnonzero((out["station"] == station) & (out["metric"] == metric))[a:b]
    level, scale = METRICS[metric]
    out.loc[out.index[sel], "value"] = level - 1.5 * scale * np.sign(
        out.loc[out.index[sel], "value"].to_numpy() - level)
    return out


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return station_frame(3000, seed=1)


@pytest.fixture(scope="module")
def models(history):
    return {k: make_detector(k, seed=3).fit(history) for k in STATION_KINDS}


def series_of(frame: pd.DataFrame, station: str):
    return station_series(frame, list(METRICS))[station]


@pytest.mark.parametrize("kind", STATION_KINDS)
def test_streaming_in_chunks_gives_the_scores_of_one_pass(models, kind):
    model = models[kind]
    probe = station_frame(700, seed=9, stations=("dc-1",))
    whole_ts, whole = model.score_station(series_of(probe, "dc-1"), model.new_state("dc-1"))
    state = model.new_state("dc-1")
    got_ts, got = [], []
    cuts = np.unique(np.random.default_rng(4).integers(0, 700, 12).tolist() + [0, 700])
    times = T0 + cuts * STEP
    for a, b in zip(times[:-1], times[1:]):  # chunks split between timestamps
        part = probe[(probe["ts"] >= a) & (probe["ts"] < b)]
        t, s = model.score_station(series_of(part, "dc-1"), state)
        got_ts.append(t)
        got.append(s)
    assert np.array_equal(np.concatenate(got_ts), whole_ts)
    assert np.allclose(np.concatenate(got), whole, rtol=0, atol=1e-12)
    assert whole.size == 700 and ((whole >= 0) & (whole <= 1)).all()


@pytest.mark.parametrize("kind", STATION_KINDS)
def test_a_future_reading_never_changes_a_past_score_and_inputs_stay_as_they_were(models, kind):
    model = models[kind]
    probe = station_frame(400, seed=11, stations=("dc-2",))
    series = series_of(probe, "dc-2")
    before = {m: (t.copy(), v.copy()) for m, (t, v) in series.items()}
    _, base = model.score_station(series, model.new_state("dc-2"))
    changed = {m: (t, np.where(t > T0 + 300 * STEP, v * 3, v)) for m, (t, v) in series.items()}
    _, after = model.score_station(changed, model.new_state("dc-2"))
    assert np.array_equal(base[:301], after[:301])
    assert not np.array_equal(base[301:], after[301:])
    for m in series:
        assert np.array_equal(series[m][1], before[m][1]) and np.array_equal(series[m][0], before[m][0])


@pytest.mark.parametrize("kind", STATION_KINDS)
def test_a_decoupled_sensor_scores_above_the_normal_rows(models, kind):
    model = models[kind]
    probe = decouple(station_frame(600, seed=21), "dc-1", "filter_dp_kpa", 300, 360)
    row_ts, scores = model.score_station(series_of(probe, "dc-1"), model.new_state("dc-1"))
    fault = scores[300:360]
    # a detector that looks back `lags` rows sees the fault's end for that long (residual: 48)
    normal = np.concatenate((scores[:300], scores[360 + max(20, model.lags):]))
    assert np.median(fault) > 0.6 > np.percentile(normal, 95)


def test_readings_are_aligned_by_the_last_value_within_the_learned_age(models):
    model = models["pca"]
    assert model.params["dc-1"]["max_age"] == int(1.5 * STEP)
    t = np.array([T0, T0 + STEP, T0 + 4 * STEP])
    series = {"inlet_temp_c": (t, np.array([80.0, 81.0, 80.0])),
              "filter_dp_kpa": (t[:1], np.array([1.2])),  # then silent: too old after 1.5 steps
              "airflow_m3h": (t, np.array([900.0, 905.0, 900.0]))}
    row_ts, scores = model.score_station(series, model.new_state("dc-1"))
    assert row_ts.tolist() == t.tolist()
    assert scores[0] > 0 and scores[1] > 0  # the ΔP reading carried forward one step
    assert scores[2] == 0.0  # a row missing a metric is no evidence


def test_a_station_model_needs_two_metrics_and_names_the_fix(history):
    from yujing.models import ModelError

    with pytest.raises(ModelError, match="two or more metrics.*--metrics"):
        make_detector("pca", metrics=["inlet_temp_c"]).fit(history)
    with pytest.raises(ModelError, match="score_station"):
        make_detector("pca").fit(history).score(np.array([T0]), np.array([1.0]))


# --- calibration ------------------------------------------------------------------------


def test_the_conformal_threshold_is_the_held_out_quantile():
    scores = np.arange(1, 1000) / 1000.0  # 999 scores
    thr, enough = conformal_threshold(scores, 0.01)
    assert enough and thr == pytest.approx(0.99)  # ceil(1000 * 0.99) = 990th smallest
    assert (scores > thr).mean() <= 0.01
    thr, enough = conformal_threshold(scores[:50], 0.001)
    assert (thr, enough) == (1.0, False)
    assert sidak(0.01, 4) == pytest.approx(1 - 0.99 ** 0.25)


@pytest.mark.parametrize("kind,metric", [("pca", None), ("mcd", None), ("baseline", "filter_dp_kpa"),
                                         ("spike", "filter_dp_kpa")])
def test_calibrated_alarms_hit_the_target_rate_on_new_normal_data(kind, metric):
    far = 0.02
    train = station_frame(4000, seed=31)
    det = fit_calibrated(train, kind, far, metric, seed=0)
    cal = det.meta["alarm"]
    assert cal["per_series_far"] == pytest.approx(far) and cal["enough_scores"]
    fresh = station_frame(4000, seed=32, start=T0 + 4000 * STEP)
    full = pd.concat([train, fresh], ignore_index=True)  # states warmed on training, as live
    rate = det.alarm(held_out_scores(det, full, T0 + 4000 * STEP)).mean()
    assert 0.25 * far <= rate <= 2.0 * far, rate


def test_sidak_correction_lowers_each_series_rate():
    train = station_frame(3000, seed=41)
    one = fit_calibrated(train, "spike", 0.02, "airflow_m3h", series=1)
    four = fit_calibrated(train, "spike", 0.02, "airflow_m3h", series=4)
    assert four.meta["alarm"]["per_series_far"] < one.meta["alarm"]["per_series_far"] / 3.9
    assert four.meta["alarm"]["threshold"] > one.meta["alarm"]["threshold"]


@pytest.mark.parametrize("kind", STATION_KINDS)
def test_save_and_load_keep_scores_and_the_signed_threshold(tmp_path, kind):
    det = fit_calibrated(station_frame(2000, seed=51), kind, 0.01, seed=2)
    det.save(tmp_path / kind, KEY)
    back = load_model(tmp_path / kind, KEY)
    probe = series_of(station_frame(300, seed=52), "dc-1")
    a = det.score_station(probe, det.new_state("dc-1"))[1]
    b = back.score_station(probe, back.new_state("dc-1"))[1]
    assert np.array_equal(a, b) and back.metrics == list(det.metrics)
    assert np.array_equal(det.alarm(a), back.alarm(b))
    meta_path = tmp_path / kind / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["alarm"]["threshold"] = 0.99  # quieter alarms by hand: the signature refuses it
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(SignatureError, match="changed after it was signed"):
        load_model(tmp_path / kind, KEY)


# --- anomaly() in rules ---------------------------------------------------------------------


class Models(dict):
    def get(self, name):
        return super().get(name)


def test_anomaly_in_a_rule_scores_the_station_row_of_a_station_model(models):
    rule = Rule.model_validate({"id": "dc", "name": "dc", "hazard": "test",
                                "grades": {"yellow": "anomaly(model=dc-pca) >= 0.9"},
                                "clear": "anomaly(model=dc-pca) < 0.5"})
    engine = Engine([rule], models=Models({"dc-pca": models["pca"]}))
    probe = decouple(station_frame(400, seed=61, stations=("dc-1",)), "dc-1", "filter_dp_kpa",
                     300, 340)
    probe = probe.sort_values(["ts", "metric"], kind="stable")
    names = list(METRICS)
    mi = np.asarray([names.index(m) for m in probe["metric"]], np.uint32)
    found = []
    for a in range(0, len(probe), 300):  # envelopes of 100 station rows
        part = probe.iloc[a:a + 300]
        got, _ = engine.process(["dc-1"], np.zeros(len(part), np.uint32), names, mi[a:a + 300],
                                part["ts"].to_numpy(np.int64), part["value"].to_numpy(np.float64))
        found += got
    raised = [f.ts for f in found if not f.clear]
    assert raised and min(raised) >= T0 + 300 * STEP
    direct_ts, direct = models["pca"].score_station(series_of(probe, "dc-1"),
                                                    models["pca"].new_state("dc-1"))
    assert direct[direct_ts == min(raised)][0] >= 0.9


def test_a_station_without_enough_complete_rows_is_scored_with_the_pooled_set(history):
    sparse = station_frame(30, seed=71, stations=("dc-3",))
    model = make_detector("pca").fit(pd.concat([history, sparse], ignore_index=True))
    assert model.meta["training"]["pooled_only"] == ["dc-3"]
    assert model.new_state("dc-3").key == "*" and model.new_state("dc-1").key == "dc-1"
