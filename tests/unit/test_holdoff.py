"""Row alarms calibrated as a whole, with a k-of-n hold-off (yujing/models/holdoff.py)."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.models.holdoff import RowAlarm, held_alarm, k_of_n, tail_rank, threshold_for_rate
from yujing.models.stuck import StuckCheck, run_lengths


def test_k_of_n_counts_within_a_group_only() -> None:
    raw = np.array([1, 1, 0, 1, 1, 1, 0, 0], dtype=bool)
    group = np.array(["a"] * 4 + ["b"] * 4)
    # k=2 of n=3: the last three rows of the same station
    assert k_of_n(raw, group, 2, 3).tolist() == [False, True, True, True, False, True, True, False]
    assert k_of_n(raw, group, 1, 1).tolist() == raw.tolist()
    with pytest.raises(ValueError, match="k"):
        k_of_n(raw, group, 4, 3)


def test_tail_rank_orders_scores_of_any_scale() -> None:
    ref = np.arange(100.0)
    r = tail_rank(ref, np.array([-1.0, 50.0, 99.0, 1000.0, np.nan]))
    assert r[0] == r[4] == pytest.approx(1 - 101 / 101)
    assert r[0] < r[1] < r[2] < r[3]
    assert r[3] == pytest.approx(1 - 1 / 101)


def test_threshold_meets_the_rate_with_and_without_hold_off() -> None:
    rng = np.random.default_rng(3)
    stat = rng.normal(size=20_000)
    group = np.repeat(np.arange(4), 5000)
    for k, n in ((1, 1), (3, 6)):
        t, rate = threshold_for_rate(stat, group, 0.05, k, n)
        assert rate <= 0.05
        assert rate > 0.045  # the lowest such threshold: close to the rate, not far below
        assert k_of_n(stat > t, group, k, n).mean() == pytest.approx(rate)
    # a hold-off allows a lower threshold for the same rate
    assert threshold_for_rate(stat, group, 0.05, 3, 6)[0] < threshold_for_rate(stat, group, 0.05)[0]


def test_two_correlated_detectors_alarm_at_the_target_not_below() -> None:
    """Two detectors seeing the same rows: Šidák's halves would alarm at about half the
    target; the combined rank keeps the rate on held-out normal rows."""
    rng = np.random.default_rng(4)
    common = rng.normal(size=40_000)
    a = common + 0.1 * rng.normal(size=common.size)
    b = 10 * common + rng.normal(size=common.size)  # another scale
    group = np.zeros(common.size, dtype=int)
    ra = RowAlarm.fit([a[:20_000], b[:20_000]], group[:20_000], 0.02)
    rate = ra.alarm([a[20_000:], b[20_000:]], group[20_000:]).mean()
    assert 0.015 < rate < 0.025
    # a shifted row (a fault) alarms
    assert ra.alarm([np.array([6.0]), np.array([60.0])], np.zeros(1)).all()


def test_a_hold_off_keeps_single_row_spikes_by_their_own_share() -> None:
    """With k of n the one-row spike would never alarm; ``single`` takes a quarter of the
    rate for single rows, and the union still keeps the rate."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=30_000)
    group = np.repeat(np.arange(3), 10_000)
    ra = RowAlarm.fit([x[:15_000]], group[:15_000], 0.04, k=3, n=6)
    assert np.isfinite(ra.single) and ra.single > ra.threshold
    assert ra.calibration_rate <= 0.04
    rate = ra.alarm([x[15_000:]], group[15_000:]).mean()
    assert 0.03 < rate < 0.05
    spike = np.zeros(10)
    spike[5] = 8.0
    alarm = ra.alarm([spike], np.zeros(10))
    assert alarm[5] and alarm.sum() == 1
    # without the single-row share the spike is lost
    held = RowAlarm.fit([x[:15_000]], group[:15_000], 0.04, k=3, n=6, single_share=0.0)
    assert not held.alarm([spike], np.zeros(10)).any()


def test_an_ending_hold_off_stops_within_m_rows_of_its_evidence_and_keeps_the_rate() -> None:
    #               0  1  2  3  4  5  6  7  8  9 10 11 12 13 14
    raw = np.array([0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    group = np.zeros(raw.size)
    plain = held_alarm(raw, group, 4, 8)
    ending = held_alarm(raw, group, 4, 8, ends=2)
    # 4 of 8: on from row 4 until row 11 (rows 4-11 still hold 4), three rows past the evidence
    assert np.flatnonzero(plain).tolist() == list(range(4, 12))
    # ending within 2 rows: bridges the dip at row 5, stops after row 9
    assert np.flatnonzero(ending).tolist() == list(range(4, 10))
    assert (ending <= plain).all()
    rng = np.random.default_rng(9)
    x = rng.normal(size=40_000)
    grp = np.repeat(np.arange(4), 10_000)
    ra = RowAlarm.fit([x[:20_000]], grp[:20_000], 0.03, k=3, n=6, ends=2)
    assert ra.ends == 2 and ra.calibration_rate <= 0.03
    assert 0.02 < ra.alarm([x[20_000:]], grp[20_000:]).mean() < 0.04



def test_run_lengths_count_repeats_and_skip_missing_readings() -> None:
    v = np.array([[1.0, 5.0], [1.0, np.nan], [2.0, 5.0], [2.0, 6.0], [2.0, 6.0]])
    runs = run_lengths(v)
    assert runs[:, 0].tolist() == [1, 2, 1, 2, 3]
    assert np.isnan(runs[1, 1]) and runs[[0, 2, 3, 4], 1].tolist() == [1, 2, 1, 2]


def test_the_stuck_check_judges_each_sensor_against_its_own_habit() -> None:
    rng = np.random.default_rng(7)
    coarse = np.round(rng.normal(0, 1, (2000, 2)))  # read to whole units: repeats often
    fine = rng.normal(0, 1, (2000, 2))  # never repeats
    check = StuckCheck(["PRES", "TEMP"]).fit({"PRES": coarse, "TEMP": fine})
    assert check.ref["PRES"].min() > check.ref["TEMP"].max() == 2.0
    fine_new, coarse_new = rng.normal(0, 1, (30, 2)), np.round(rng.normal(0, 1, (30, 2)))
    fine_new[10:, 1] = fine_new[10, 1]  # station 1's temperature stuck for 20 rows
    stat = check.statistic({"PRES": coarse_new, "TEMP": fine_new})
    assert stat[-1, 1] == 20 / 2.0 and stat[-1, 0] < 3
