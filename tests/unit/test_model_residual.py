"""The residual station detector (residual.py): faults stay flagged for as long as they last.

Synthetic stations: three sensors of a dust collector driven by one load (AR(1)) plus
their own noise; the generic station-model checks (chunks, the future, signed round trip)
run on it in test_model_station.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yujing.models import make_detector
from yujing.models.alarm import fit_calibrated, held_out_scores
from yujing.models.residual import RUN_WINDOWS
from yujing.models.station import station_series
from yujing.rules.engine import Engine
from yujing.rules.schema import Rule

STEP = 600_000
T0 = 1_735_660_800_000
METRICS = {"inlet_temp_c": (80.0, 6.0), "filter_dp_kpa": (1.2, 0.25), "airflow_m3h": (900.0, 60.0)}


def frame(n: int, seed: int, start: int = T0, round_dp: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = start + np.arange(n, dtype=np.int64) * STEP
    load = np.zeros(n)
    for i in range(1, n):
        load[i] = 0.97 * load[i - 1] + rng.normal(0, 0.25)
    parts = []
    for metric, (level, scale) in METRICS.items():
        v = level + scale * (load + rng.normal(0, 0.15, n))
        if round_dp and metric == "filter_dp_kpa":  # a coarse sensor: many identical readings
            v = np.round(v / round_dp) * round_dp
        parts.append(pd.DataFrame({"ts": ts, "station": "dc-1", "metric": metric, "value": v}))
    return pd.concat(parts, ignore_index=True)


def with_fault(df: pd.DataFrame, metric: str, a: int, b: int, how) -> pd.DataFrame:
    out = df.copy()
    idx = out.index[np.flatnonzero(out["metric"] == metric)[a:b]]
    out.loc[idx, "value"] = how(out.loc[idx, "value"].to_numpy())
    return out


@pytest.fixture(scope="module")
def model():
    return make_detector("residual", seed=0).fit(frame(4000, seed=1))


def scores_of(model, df: pd.DataFrame) -> np.ndarray:
    return model.score_station(station_series(df, list(METRICS))["dc-1"], model.new_state("dc-1"))[1]


FAULTS = {
    "stuck": ("airflow_m3h", lambda v: np.full(v.size, v[0])),
    "step": ("filter_dp_kpa", lambda v: v + 2 * 0.25 * 0.15 * 4),  # 4 sensor-noise sd off
    "noisy": ("inlet_temp_c", lambda v: v + np.random.default_rng(5).normal(0, 6.0 * 0.5, v.size)),
    "drift": ("filter_dp_kpa", lambda v: v + np.linspace(0, 0.25, v.size)),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_a_long_fault_stays_flagged_not_only_at_its_start(model, kind):
    metric, how = FAULTS[kind]
    clean = frame(900, seed=7)
    a, b = 400, 560
    s = scores_of(model, with_fault(clean, metric, a, b, how))
    normal = np.concatenate((s[60:a], s[b + 60:]))  # the first rows have no full past
    high = np.percentile(normal, 99)
    settle = {"stuck": 12, "drift": 60}.get(kind, 6)  # a run must grow, a drift must grow
    flagged = (s[a + settle:b] > high).mean()
    assert flagged >= 0.9, (kind, flagged, high)


def test_the_check_that_fires_names_the_fault(model):
    clean = frame(700, seed=8)
    stuck = with_fault(clean, "airflow_m3h", 400, 480, lambda v: np.full(v.size, v[0]))
    series = station_series(stuck, list(METRICS))["dc-1"]
    state = model.new_state("dc-1")
    params = model.params[state.key]
    _, x = model._align(state, series, int(params["max_age"]))
    f = model._features((x - params["center"]) / params["scale"], 0)
    ok = np.isfinite(f).all(axis=1)
    parts = model.explain(f[ok], params)
    rows = np.flatnonzero(ok)
    inside = (rows >= 430) & (rows < 480)
    strongest = max(parts, key=lambda n: np.median(parts[n][inside]))
    assert strongest == "stuck"
    assert params["comp_refs"]["stuck"].min() >= 2 and params["eps"].shape == (3,)


def test_a_coarse_sensor_with_many_repeats_learns_its_runs_and_does_not_alarm():
    far = 0.02
    train = frame(5000, seed=31, round_dp=0.1)
    det = fit_calibrated(train, "residual", far, seed=0)
    j = det.metrics.index("filter_dp_kpa")
    refs = det.params["dc-1"]["comp_refs"]["stuck"]
    assert refs[j] > refs[1 - j if j else 1]  # the coarse sensor's normal runs are longer
    fresh = frame(4000, seed=32, start=T0 + 5000 * STEP, round_dp=0.1)
    full = pd.concat([train, fresh], ignore_index=True)
    rate = det.alarm(held_out_scores(det, full, T0 + 5000 * STEP)).mean()
    assert 0.25 * far <= rate <= 2.0 * far, rate


def test_windows_must_be_ordered_and_the_past_is_bounded():
    with pytest.raises(ValueError, match="fast"):
        make_detector("residual", fast=30, slow=10)
    det = make_detector("residual", fast=4, slow=12)
    assert det.lags == max(12, RUN_WINDOWS[-1]) and det.hyper()["slow"] == 12


class Models(dict):
    def get(self, name):
        return super().get(name)


def test_a_rule_on_the_residual_model_warns_during_a_stuck_sensor(model):
    from_rules = Rule.model_validate({"id": "dc", "name": "dc", "hazard": "test",
                                      "grades": {"yellow": "anomaly(model=dc-res) >= 0.9"},
                                      "clear": "anomaly(model=dc-res) < 0.5"})
    engine = Engine([from_rules], models=Models({"dc-res": model}))
    probe = with_fault(frame(500, seed=61), "airflow_m3h", 300, 400, lambda v: np.full(v.size, v[0]))
    probe = probe.sort_values(["ts", "metric"], kind="stable")
    names = list(METRICS)
    mi = np.asarray([names.index(m) for m in probe["metric"]], np.uint32)
    found = []
    for a in range(0, len(probe), 300):  # envelopes of 100 station rows: the model's past spans two
        part = probe.iloc[a:a + 300]
        got, _ = engine.process(["dc-1"], np.zeros(len(part), np.uint32), names, mi[a:a + 300],
                                part["ts"].to_numpy(np.int64), part["value"].to_numpy(np.float64))
        found += got
    raised = [f.ts for f in found if not f.clear]
    assert raised and T0 + 300 * STEP < min(raised) < T0 + 400 * STEP
    direct_ts, direct = model.score_station(station_series(probe, names)["dc-1"],
                                            model.new_state("dc-1"))
    assert direct[direct_ts == min(raised)][0] >= 0.9
