"""The physical limits check (yujing/models/limits.py): a negative wind speed."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.models.base import ModelError
from yujing.models.holdoff import RowAlarm
from yujing.models.limits import LimitsCheck


def wind(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Three stations: a gamma-distributed wind speed read to 0.1 m/s (never negative)."""
    rng = np.random.default_rng(seed)
    return {"WSPM": np.round(rng.gamma(2.0, 1.0, (rows, 3)), 1)}


def test_sound_wind_scores_zero_and_a_noisy_anemometer_crosses_the_limit() -> None:
    check = LimitsCheck().fit(wind(1000, 1))
    values = wind(500, 2)
    assert (check.statistic(values) == 0).all()
    rng = np.random.default_rng(0)
    values["WSPM"][200:240, 1] += rng.normal(0, 2.6, 40)  # noise of 1 u (bench/faults.py)
    stat = check.statistic(values)
    below = values["WSPM"][200:240, 1] < 0
    assert below.sum() >= 5  # the noise carries a calm reading across 0
    assert np.allclose(stat[200:240, 1][below], -values["WSPM"][200:240, 1][below])
    assert (stat[:, [0, 2]] == 0).all()


def test_a_row_alarm_calibrated_on_sound_rows_never_alarms_on_sound_rows() -> None:
    check = LimitsCheck().fit(wind(200, 3))
    cal, test = check.statistic(wind(2000, 4)).T.ravel(), wind(2000, 5)
    group = np.repeat(np.arange(3), 2000)
    alarm = RowAlarm.fit([cal], group, 0.01)
    test["WSPM"][1500, 2] = -0.4
    fired = alarm.alarm([check.statistic(test).T.ravel()], group)
    assert fired.sum() == 1 and fired[2 * 2000 + 1500]


def test_missing_readings_and_errors() -> None:
    values = wind(5, 6)
    values["WSPM"][2, 0] = np.nan
    stat = LimitsCheck().fit(values).statistic(values)
    assert np.isnan(stat[2, 0]) and np.isfinite(stat[2, 1])
    with pytest.raises(ModelError, match="no readings of WSPM"):
        LimitsCheck().fit({"TEMP": values["WSPM"]})
    with pytest.raises(ModelError, match="not below"):
        LimitsCheck({"TEMP": (5.0, -5.0)})
