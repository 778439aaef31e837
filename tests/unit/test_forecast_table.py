"""The forecast table (yujing.rules.forecast): newest issue per valid time, as of each point."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.rules.forecast import ForecastTable

T = 1_750_000_000_000
H = 3_600_000
ST = ["S1", "S2"]
IDS = {name: i for i, name in enumerate(ST)}


def at(table: ForecastTable, fn: str, t: int, window_ms: int, station: int = 0) -> float:
    return float(table.ahead(fn, IDS, "rain_mm_fcst", np.array([station]), np.array([t]),
                             window_ms)[0])


def issue(table: ForecastTable, issued: int, values: list[float], first: int, station="S1"):
    for k, v in enumerate(values):
        table.add(station, "rain_mm_fcst", issued, first + k * H, v)


def test_sum_and_max_over_valid_times_ahead_window_open_at_now_closed_at_the_end():
    t = ForecastTable()
    issue(t, T, [10, 20, 15, 5], T + H)           # valid T+1h … T+4h
    assert at(t, "sum_ahead", T, 2 * H) == 30     # (T, T+2h]: 10 + 20
    assert at(t, "max_ahead", T, 3 * H) == 20
    assert at(t, "sum_ahead", T + H, 2 * H) == 35  # T+1h itself is not ahead any more


def test_no_forecast_in_the_window_is_nan_not_zero():
    t = ForecastTable()
    assert np.isnan(at(t, "sum_ahead", T, H))
    issue(t, T, [4], T + 5 * H)
    assert np.isnan(at(t, "sum_ahead", T, 2 * H))
    assert np.isnan(at(t, "sum_ahead", T, H, station=1))  # another station's forecast
    assert at(t, "sum_ahead", T, 6 * H) == 4


def test_a_later_issue_replaces_the_earlier_for_the_same_valid_times_only():
    t = ForecastTable()
    issue(t, T, [10, 20, 15], T + H)               # valid 1h, 2h, 3h
    issue(t, T + 30 * 60_000, [1, 2], T + 2 * H)   # issued 30 min later: valid 2h, 3h
    now = T + 40 * 60_000
    assert at(t, "sum_ahead", now, 3 * H) == 10 + 1 + 2
    assert t.current("S1", "rain_mm_fcst", now) == {T + H: 10, T + 2 * H: 1, T + 3 * H: 2}


def test_an_older_issue_arriving_late_changes_nothing():
    t = ForecastTable()
    issue(t, T + H, [1, 2], T + 2 * H)          # the newer issue arrives first
    issue(t, T, [50, 60], T + 2 * H)            # then the older one (a retry, a replay)
    assert at(t, "sum_ahead", T + H, 3 * H) == 3
    assert at(t, "max_ahead", T + H, 3 * H) == 2


def test_a_point_before_an_issue_reads_the_issue_that_was_out_then():
    t = ForecastTable()
    issue(t, T, [30, 30], T + H)
    issue(t, T + 30 * 60_000, [1, 1], T + H)
    assert at(t, "sum_ahead", T + 10 * 60_000, 2 * H) == 60   # before the second issue
    assert at(t, "sum_ahead", T + 31 * 60_000, 2 * H) == 2
    assert np.isnan(at(t, "sum_ahead", T - 1, 2 * H))          # before any issue


def test_the_same_issue_and_valid_time_again_is_a_correction():
    t = ForecastTable()
    t.add("S1", "rain_mm_fcst", T, T + H, 5.0)
    t.add("S1", "rain_mm_fcst", T, T + H, 7.0)
    assert len(t) == 1 and at(t, "sum_ahead", T, H) == 7.0


def test_expiry_drops_past_valid_times_and_replaced_issues():
    t = ForecastTable()
    issue(t, T, [10, 20, 15], T + H)
    issue(t, T + H, [1, 1], T + 2 * H)
    assert len(t) == 5
    dropped = t.expire(T + H)    # valid 1h is past; issue 1 at 2h and 3h is replaced by then
    assert dropped == 3 and len(t) == 2
    assert at(t, "sum_ahead", T + H, 3 * H) == 2
    assert t.expire(T + 10 * H) == 2 and len(t) == 0


def test_expiry_keeps_an_issue_replaced_only_later_than_the_cut():
    t = ForecastTable()
    issue(t, T, [10], T + 3 * H)
    issue(t, T + 2 * H, [1], T + 3 * H)
    t.expire(T + H)        # a point at T+1h still reads the first issue
    assert at(t, "sum_ahead", T + H, 3 * H) == 10


def test_snapshot_and_restore_give_the_same_table():
    t = ForecastTable()
    issue(t, T, [10, 20], T + H)
    issue(t, T + H, [3], T + 2 * H, station="S2")
    again = ForecastTable()
    again.restore(t.snapshot())
    assert again.snapshot() == t.snapshot()
    for fn in ("sum_ahead", "max_ahead"):
        pts = np.array([0, 1, 0]), np.array([T, T + H, T + 30 * 60_000])
        assert np.array_equal(again.ahead(fn, IDS, "rain_mm_fcst", *pts, 3 * H),
                              t.ahead(fn, IDS, "rain_mm_fcst", *pts, 3 * H), equal_nan=True)
    empty = ForecastTable()
    empty.restore(None)   # a checkpoint from before forecasts
    assert len(empty) == 0


@pytest.mark.parametrize("fn", ["sum_ahead", "max_ahead"])
def test_many_points_at_once_match_the_newest_issue_read_point_by_point(fn):
    t = ForecastTable()
    rng = np.random.default_rng(7)
    for k in range(6):
        issue(t, T + k * 20 * 60_000, rng.uniform(0, 30, 8).round(1).tolist(), T + H, station="S1")
        issue(t, T + k * 25 * 60_000, rng.uniform(0, 30, 5).round(1).tolist(), T + 2 * H, station="S2")
    pst = np.array([0, 1, 0, 1, 0, 1] * 5)
    pt = T + np.arange(30) * 11 * 60_000
    together = t.ahead(fn, IDS, "rain_mm_fcst", pst, pt, 3 * H)
    alone = []
    for s, x in zip(pst.tolist(), pt.tolist(), strict=True):
        vals = [v for valid, v in t.current(ST[s], "rain_mm_fcst", x).items() if x < valid <= x + 3 * H]
        alone.append((sum(vals) if fn == "sum_ahead" else max(vals)) if vals else np.nan)
    assert np.array_equal(together, np.array(alone), equal_nan=True)


def test_the_engine_s_sweeps_wait_for_the_cut_to_move_a_step():
    t = ForecastTable()
    issue(t, T, [1, 2, 3], T + H)
    assert t.expire(T + H, step_ms=300_000) == 1          # the first sweep
    assert t.expire(T + 2 * H - 1, step_ms=H) == 0        # not a step on: skipped
    assert len(t) == 2 and at(t, "sum_ahead", T + 2 * H, H) == 3   # never read: looks ahead
    assert t.expire(T + 2 * H, step_ms=H) == 1


def test_a_station_the_engine_meets_after_its_forecast_is_found():
    t = ForecastTable()
    issue(t, T, [7], T + H, station="S2")
    one = float(t.ahead("sum_ahead", {"S1": 0}, "rain_mm_fcst", np.array([0]), np.array([T]), H)[0])
    assert np.isnan(one)
    two = t.ahead("sum_ahead", IDS, "rain_mm_fcst", np.array([1, 0]), np.array([T, T]), H)
    assert two[0] == 7 and np.isnan(two[1])
