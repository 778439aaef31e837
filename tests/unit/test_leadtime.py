"""Lead time of projection warnings in a backtest: synthetic rising series replayed through
the Pipeline with an eta() rule, then the minutes gained and the false alarms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yujing.backtest import leadtime
from yujing.backtest.replay import replay
from yujing.domain import Term, WarningEvent
from yujing.pipeline import Pipeline
from yujing.readings_csv import Readings
from yujing.rules.schema import Rule
from yujing.stations import Registry, Station

MIN = 60_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000

RULE = Rule.model_validate({
    "id": "level-eta", "name": "预计超警", "hazard": "flood",
    "grades": {"yellow": "eta(level_m, station.warning_level_m, 1h) <= 2h and count(level_m, 1h) >= 6"},
    "clear": {"when": "not (eta(level_m, station.warning_level_m, 1h) <= 2h)", "for": "30m"}})


def readings(series: dict[str, np.ndarray], step_min: int = 5) -> Readings:
    stations = sorted(series)
    si = np.concatenate([np.full(series[s].size, i, np.uint32) for i, s in enumerate(stations)])
    ts = np.concatenate([T0 + np.arange(series[s].size, dtype=np.int64) * step_min * MIN
                         for s in stations])
    val = np.concatenate([series[s] for s in stations]).astype(np.float64)
    order = np.argsort(ts, kind="stable")
    return Readings(stations, ["level_m"], si[order], np.zeros(si.size, np.uint32)[order],
                    ts[order], val[order])


def registry(*ids: str) -> Registry:
    return Registry([Station(id=s, name=s, kind="river_gauge", thresholds={"warning_level_m": 6.5})
                     for s in ids])


def test_a_steady_rise_gains_about_two_hours_and_a_rise_that_stops_is_a_false_alarm():
    k = np.arange(100)
    series = {
        # 0.6 m/h from 3.5 m: 6.5 m at 5h (k = 60); warned at 3h05m (5.35 m, 1.9 h to go)
        "RISE": 3.5 + 0.05 * k,
        # the same rise until 3h20m (5.5 m), then level: projected, never reached
        "STOP": np.minimum(3.5 + 0.05 * k, 5.5),
        # flat: never warned
        "FLAT": np.full(k.size, 4.0),
    }
    data = readings(series)
    [res] = replay([Pipeline([RULE], registry(*series))], data, 50)
    rows = leadtime.lead_times(res.events, data)
    by = {r.station: r for r in rows.itertuples(index=False)}
    assert set(by) == {"RISE", "STOP"}
    rise, stop = by["RISE"], by["STOP"]
    assert rise.outcome == "crossed" and rise.raised_ms == T0 + 185 * MIN
    assert rise.crossed_ms == T0 + int(np.argmax(series["RISE"] >= 6.5)) * 5 * MIN  # 5h or 5h05m
    assert rise.lead_min == pytest.approx((rise.crossed_ms - rise.raised_ms) / MIN)
    assert 115 <= rise.lead_min <= 120
    assert rise.level == 6.5 and rise.horizon_ms == 2 * 3_600_000
    assert stop.outcome == "false alarm" and pd.isna(stop.crossed_ms) and pd.isna(stop.lead_min)
    summ = leadtime.summary(rows).set_index("rule").loc["level-eta"]
    assert (summ.warnings, summ.crossed, summ.false_alarms, summ.undecided) == (2, 1, 1, 0)
    assert summ.lead_median_min == rise.lead_min


def event(ts: int, terms: list[Term], kind: str = "raised") -> WarningEvent:
    return WarningEvent(kind=kind, key="r@S", episode="r@S@0", rule="r", rule_name="r",
                        hazard="flood", station="S", grade=2, previous=0, ts=ts, value=None,
                        window="", reason="", terms=terms)


def test_project_warnings_count_and_a_raise_near_the_end_is_undecided():
    data = readings({"S": np.asarray([0.1, 0.2, 0.3, 0.31, 0.2])}, step_min=10)
    proj = Term(fn="project", op=">=", metric="level_m", value=0.32, threshold=0.3,
                horizon_ms=30 * MIN)
    late = Term(fn="eta", op="<=", metric="level_m", value=1.0, raw=0.5, threshold=2.0,
                horizon_ms=2 * 3_600_000)
    other = Term(fn="last", op=">=", metric="level_m", value=0.3, threshold=0.3)
    rows = leadtime.lead_times([event(T0 + 10 * MIN, [other, proj]), event(T0 + 20 * MIN, [late]),
                                event(T0, [other]), event(T0, [proj], kind="cleared")], data)
    assert rows["outcome"].tolist() == ["crossed", "undecided"]
    assert rows["lead_min"].iloc[0] == 10.0  # 0.3 m read at 20 min, warned at 10


def rain(values: list[float], step_min: int = 10) -> Readings:
    ts = T0 + np.arange(len(values), dtype=np.int64) * step_min * MIN
    return Readings(["S"], ["rain_mm"], np.zeros(len(values), np.uint32),
                    np.zeros(len(values), np.uint32), ts, np.asarray(values, np.float64))


def test_forecast_warnings_are_scored_against_the_observed_amounts():
    # 10-minute rain: 5 mm before the raise (at 30 min), then 10 mm every 10 min from 40 min
    data = rain([0, 0, 5, 0, 10, 10, 10, 10, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    raised = T0 + 30 * MIN
    # past 1 h observed + next 5 h forecast >= 50: 5 mm before the raise + 10+10+10+10+10 →
    # 55 mm at 80 min, 50 mm first at 80 min (5 + 4 x 10 = 45 at 70 min)
    past_ahead = Term(fn="sum_past_ahead", op=">=", metric="rain_mm", window_ms=60 * MIN,
                      horizon_ms=5 * 60 * MIN, value=52.0, raw=47.0, threshold=50.0)
    # the next 3 h forecast >= 1 mm: the first observed millimetre after the raise, at 40 min
    ahead = Term(fn="sum_ahead", op=">=", metric="rain_mm_fcst", horizon_ms=3 * 60 * MIN,
                 value=2.0, threshold=1.0)
    # the next 1 h's highest 10-minute amount >= 20 mm: never observed → false alarm
    peak = Term(fn="max_ahead", op=">=", metric="rain_mm_fcst", horizon_ms=60 * MIN,
                value=25.0, threshold=20.0)
    # a forecast compared from below (dry ahead) foresaw no crossing: not scored
    dry = Term(fn="sum_ahead", op="<", metric="rain_mm_fcst", horizon_ms=60 * MIN,
               value=0.0, threshold=1.0)
    rows = leadtime.lead_times([event(raised, [past_ahead]), event(raised, [ahead]),
                                event(raised, [peak]), event(raised, [dry])], data)
    assert rows["metric"].tolist() == ["rain_mm"] * 3
    assert rows["outcome"].tolist() == ["crossed", "crossed", "false alarm"]
    assert rows["crossed_ms"].iloc[0] == T0 + 80 * MIN and rows["lead_min"].iloc[0] == 50.0
    assert rows["lead_min"].iloc[1] == 10.0
    assert rows["level"].tolist() == [50.0, 1.0, 20.0]


def test_a_past_and_ahead_sum_already_reached_at_the_raise_gains_nothing():
    data = rain([30, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    term = Term(fn="sum_past_ahead", op=">=", metric="rain_mm", window_ms=60 * MIN,
                horizon_ms=2 * 60 * MIN, value=60.0, raw=0.0, threshold=50.0)
    [row] = leadtime.lead_times([event(T0 + 20 * MIN, [term])], data).itertuples(index=False)
    assert row.outcome == "crossed" and row.lead_min == 0.0
