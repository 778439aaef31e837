"""The lead-time benches' scoring (bench/leadtime_hubeau.py, bench/leadtime_beijing.py) on
small made-up series: the real data stays out of the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench import leadtime_beijing as bj
from bench import leadtime_hubeau as hub

MIN = 60_000
HOUR = 60 * MIN
T0 = 1_579_000_000_000 // HOUR * HOUR  # January 2020, on the hour


def test_crossings_count_a_hovering_river_once():
    ts = T0 + np.arange(12) * HOUR
    over = np.array([0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    assert hub.crossings(ts, over, 6 * HOUR).tolist() == [T0 + 2 * HOUR]
    later = over.copy()
    later[10] = True  # five hours after the last reading over: the same event
    assert hub.crossings(ts, later, 6 * HOUR).tolist() == [T0 + 2 * HOUR]
    later[10], later[11] = False, True  # six hours after: a new one
    assert hub.crossings(ts, later, 6 * HOUR).tolist() == [T0 + 2 * HOUR, T0 + 11 * HOUR]


def test_a_record_that_starts_over_the_level_has_no_crossing_there():
    ts = T0 + np.arange(4) * HOUR
    assert hub.crossings(ts, np.array([1, 1, 0, 0], dtype=bool), HOUR).size == 0


def gauge(levels_m: np.ndarray) -> pd.Series:
    return pd.Series(levels_m, T0 + np.arange(levels_m.size) * 10 * MIN)


def test_a_steady_rise_is_warned_ahead_and_scored_once():
    # 3 h flat at 1 m, then +0.5 m/h for 8 h: 3 m is reached 4 h into the rise
    h = np.concatenate([np.full(18, 1.0), 1.0 + 0.5 * np.arange(1, 49) / 6, np.full(30, 5.0)])
    r = hub.evaluate({"G": gauge(h)}, {"G": 3.0}, hub.projection("1h", "2h", 0.0, False))
    assert r["events"] == 1 and r["ahead"] == 1
    assert 100 <= r["leads"][0] <= 120  # eta <= 2h once an hour of the rise is in the window
    assert r["false_per_sm"] == 0


def test_a_burst_then_a_creep_is_a_false_alarm_that_confirmation_avoids():
    # half an hour at +1.5 m/h, then two at +0.1 m/h to a crest at 1.95 m, a metre under the
    # level: the 2 h trend still carries the burst and projects the level within 2 h, the
    # newer hour's trend (the creep) does not
    steps = np.concatenate([np.full(3, 1.5), np.full(12, 0.1)]) / 6
    h = np.concatenate([np.full(18, 1.0), 1.0 + np.cumsum(steps), np.full(60, 1.95)])
    assert abs(h.max() - 1.95) < 1e-9
    plain = hub.evaluate({"G": gauge(h)}, {"G": 2.95}, hub.projection("2h", "2h", 0.0, False))
    confirmed = hub.evaluate({"G": gauge(h)}, {"G": 2.95}, hub.projection("2h", "2h", 0.0, True))
    assert plain["events"] == 0 and plain["false_per_sm"] > 0
    assert confirmed["false_per_sm"] == 0 and confirmed["warn_per_sm"] == 0


def rain(mm: list[float]) -> dict[str, pd.Series]:
    values = np.array([0.0] * 12 + mm + [0.0] * 24)
    return {"s": pd.Series(values, T0 + np.arange(values.size) * HOUR)}


def test_rain_projection_gains_hours_on_orange():
    # 20 mm an hour: 50 mm in 3 h at the third hour; 2 h ahead at a 1 h rate says so at the first
    r = bj.evaluate(rain([20.0, 20.0, 20.0]), (2, 1, 0.0))
    assert r["orange"]["leads"].tolist() == [120.0]
    assert r["orange"]["false"] == 0 and r["orange"]["plain_warnings"] == 1


def test_one_heavy_hour_that_stops_is_an_orange_false_alarm():
    r = bj.evaluate(rain([20.0]), (2, 1, 0.0))
    assert r["orange"]["leads"].size == 0 and r["orange"]["false"] == 1
    assert r["orange"]["plain_warnings"] == 0
