"""The saturation check (yujing/models/saturation.py): a dew point above the temperature."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.models.base import ModelError
from yujing.models.saturation import SaturationCheck


def air(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Two stations: temperature with a daily cycle, dew point 1 to 10 °C below it."""
    rng = np.random.default_rng(seed)
    temp = 10 + 8 * np.sin(2 * np.pi * np.arange(rows) / 24)[:, None] + rng.normal(0, 1, (rows, 2))
    return {"TEMP": temp, "DEWP": temp - rng.uniform(1, 10, (rows, 2))}


def test_only_a_dew_point_above_anything_seen_scores_above_zero() -> None:
    check = SaturationCheck().fit(air(2000, 1))
    values = air(500, 2)
    assert (check.statistic(values) < 0.5).all()  # sound air: at most the fitted tolerance
    values["DEWP"][100:110, 1] = values["TEMP"][100:110, 1] + 2.0  # impossible readings
    stat = check.statistic(values)
    assert (stat[100:110, 1] > 1.0).all() and (stat[100:110, 0] < 0.5).all()


def test_missing_readings_have_no_statistic_and_errors_say_why() -> None:
    check = SaturationCheck().fit(air(200, 3))
    values = air(10, 4)
    values["TEMP"][3, 0] = np.nan
    stat = check.statistic(values)
    assert np.isnan(stat[3, 0]) and np.isfinite(stat[3, 1])
    with pytest.raises(ModelError, match="before fit"):
        SaturationCheck().statistic(values)
    with pytest.raises(ModelError, match="needs DEWP and TEMP"):
        SaturationCheck().fit({"TEMP": values["TEMP"]})


def test_a_station_fitted_on_dry_air_does_not_score_a_foggy_morning() -> None:
    """Fitted where the dew point stayed 5 °C or more below the temperature: a sound dew
    point 0.5 °C below it (fog coming) scores 0, one above it still scores."""
    dry = air(2000, 5)
    dry["DEWP"] = dry["TEMP"] - 5 - np.abs(dry["TEMP"] - dry["DEWP"])
    check = SaturationCheck().fit(dry)
    assert (check.top == 0).all()
    values = air(100, 6)
    values["DEWP"][:, 0] = values["TEMP"][:, 0] - 0.5
    values["DEWP"][50, 1] = values["TEMP"][50, 1] + 1.5
    stat = check.statistic(values)
    assert (stat[:, 0] == 0).all()
    assert stat[50, 1] == 1.5 and (np.delete(stat[:, 1], 50) == 0).all()
    old = SaturationCheck(clip=False).fit(dry)  # models fitted before: the old statistic
    assert (old.top < -5).all() and (old.statistic(values)[:, 0] > 4).all()
