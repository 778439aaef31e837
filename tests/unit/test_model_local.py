"""The local neighbour residual (yujing/models/local.py) on a synthetic group of stations:
one weather signal seen by every station with its own offset and sensor noise."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.models import local
from yujing.models.base import ModelError
from yujing.models.local import LocalResidual

STATIONS = ["a", "b", "c", "d"]


def group(rows: int, seed: int) -> dict[str, np.ndarray]:
    """TEMP at four stations: a daily cycle and a random walk shared, an offset and
    independent noise of 0.3 each."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    weather = 5 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.3, rows))
    return {"TEMP": np.column_stack([off + weather + rng.normal(0, 0.3, rows) for off in (0, 2, -1, 4)])}


def fitted() -> LocalResidual:
    return LocalResidual(STATIONS, ["TEMP"]).fit(group(3000, seed=1))


def test_scores_of_new_rows_need_only_the_last_history_rows() -> None:
    model = fitted()
    values = group(1500, seed=2)
    whole = model.statistic(values)
    tail = model.statistic({m: v[-(local.HISTORY + 40):] for m, v in values.items()})
    assert np.allclose(tail[-40:], whole[-40:], rtol=1e-9, atol=1e-9, equal_nan=True)


def test_a_step_at_one_station_is_seen_there_and_not_at_its_neighbours() -> None:
    model = fitted()
    values = group(1500, seed=3)
    values["TEMP"][1000:1048, 2] += 4.0  # about ten noise widths
    ex = model.explain(values)["TEMP"]
    assert np.nanmedian(ex["level"][1000:1048, 2]) > 3 and np.nanmedian(ex["held"][1010:1048, 2]) > 3
    others = np.fmax(ex["level"], ex["held"])[1000:1048][:, [0, 1, 3]]
    assert np.nanmedian(others) < 1 and np.nanmax(others) < 3  # pairs: one of three moved


def test_a_noisy_sensor_raises_its_steps_view_only() -> None:
    model = fitted()
    values = group(1500, seed=4)
    rng = np.random.default_rng(0)
    values["TEMP"][1000:1036, 1] += rng.normal(0, 2.0, 36)  # its level stays at the truth
    steps = model.explain(values)["TEMP"]["steps"]
    assert np.nanmedian(steps[1006:1036, 1]) > 3
    assert np.nanmax(steps[1000:1036][:, [0, 2, 3]]) < 2  # the smallest pair of each is sound
    # and it ends with the noise: a few rows after it, the view is back
    assert np.nanmax(steps[1040:1060, 1]) < 2


def test_a_change_at_every_station_at_once_is_not_scored() -> None:
    model = fitted()
    values = group(1500, seed=5)
    rng = np.random.default_rng(1)
    values["TEMP"][1000:1200] = np.round(values["TEMP"][1000:1200] + rng.normal(0, 3, (200, 4)))
    stat = model.statistic(values)
    assert model.common_rows["TEMP"] > 150
    assert np.isnan(stat[1012:1200]).mean() > 0.9  # not scored while the source is changed
    assert np.isfinite(stat[:1000]).mean() > 0.95


def test_errors_say_what_is_missing() -> None:
    with pytest.raises(ModelError, match="two or more"):
        LocalResidual(["a"], ["TEMP"])
    with pytest.raises(ModelError, match="before fit"):
        LocalResidual(STATIONS, ["TEMP"]).statistic(group(500, 0))
    with pytest.raises(ModelError, match="need"):
        LocalResidual(STATIONS, ["TEMP"]).fit(group(100, 0))


def test_a_station_is_off_only_as_far_as_against_every_neighbour() -> None:
    z = np.array([[3.0, 2.0, 5.0],      # all above: the nearest to 0
                  [-4.0, -1.5, np.nan],  # a missing pair is left out
                  [6.0, 0.5, -0.2],      # one neighbour disagrees: not off
                  [np.nan, np.nan, 2.5]])
    assert local.agreed(z).tolist() == [2.0, -1.5, 0.0, 2.5]


def test_one_view_alone_is_its_part_of_the_statistic() -> None:
    model = fitted()
    values = group(1500, seed=6)
    values["TEMP"][1000:1048, 2] += 4.0  # a step: the level and held views, not the steps view
    level, held, steps = (model.statistic(values, view=v) for v in ("level", "held", "steps"))
    assert np.allclose(model.statistic(values), np.fmax(np.fmax(level, held), steps), equal_nan=True)
    assert np.nanmedian(level[1000:1048, 2]) > 3 and np.nanmedian(steps[1002:1048, 2]) < 2
    with pytest.raises(ModelError, match="no view"):
        model.statistic(values, view="slope")
    assert np.allclose(model.statistic(values, view=("level", "held")), np.fmax(level, held), equal_nan=True)


ENDS = ("held", "steps")


def test_a_fault_end_is_not_alarmed_when_the_gates_need_this_row() -> None:
    """The row after a step fault: the old held gate (a 3-row median) still holds two faulty
    rows and alarms; with ``ends`` the row's own reading must agree, and it does not."""
    values = group(1500, seed=3)
    values["TEMP"][1000:1048, 2] += 2.0
    old = LocalResidual(STATIONS, ["TEMP"]).fit(group(3000, seed=1)).explain(values)["TEMP"]
    new = LocalResidual(STATIONS, ["TEMP"], ends=ENDS).fit(group(3000, seed=1)).explain(values)["TEMP"]
    assert old["held"][1048, 2] > 1 and new["held"][1048, 2] < 1
    assert np.nanmedian(new["held"][1024:1048, 2]) > 1  # the fault itself still is


def test_a_noisy_end_stops_the_steps_view_a_row_earlier() -> None:
    """After a noisy window, the step back to the truth is one wide step: the old gate
    (median of 3 squared steps) can still alarm two rows after the end (it holds that
    step and the window's last), the new one (both of the last 2) cannot; the noisy window
    itself stays high on most rows (fewer than with the median: two wide steps in a row
    are rarer than two of three). Seven noise draws."""
    old_model = LocalResidual(STATIONS, ["TEMP"]).fit(group(3000, seed=1))
    new_model = LocalResidual(STATIONS, ["TEMP"], ends=ENDS).fit(group(3000, seed=1))
    old_after, new_after = [], []
    for seed in range(5, 12):
        values = group(1500, seed=4)
        values["TEMP"][1000:1030, 1] += np.random.default_rng(seed).normal(0, 3.0, 30)
        old, new = old_model.explain(values)["TEMP"], new_model.explain(values)["TEMP"]
        old_after.append(old["steps"][1031, 1] > 1)
        new_after.append(new["steps"][1031, 1] > 1)
        assert np.mean(new["steps"][1002:1030, 1] > 1) > 0.4
    assert sum(old_after) >= 3 and sum(new_after) == 0


def test_with_ends_a_clean_series_stays_near_its_fitted_rate() -> None:
    """Each view ÷ its fitted 99th percentile: about 1 % of clean rows above 1."""
    model = LocalResidual(STATIONS, ["TEMP"], ends=ENDS).fit(group(3000, seed=1))
    for name, s in model.explain(group(3000, seed=6))["TEMP"].items():
        share = float(np.mean(s[np.isfinite(s)] > 1))
        assert 0.002 < share < 0.03, (name, share)


def test_with_ends_new_rows_need_only_the_last_history_rows() -> None:
    model = LocalResidual(STATIONS, ["TEMP"], ends=ENDS).fit(group(3000, seed=1))
    values = group(1500, seed=2)
    whole = model.statistic(values)
    tail = model.statistic({m: v[-(local.HISTORY + 40):] for m, v in values.items()})
    assert np.allclose(tail[-40:], whole[-40:], rtol=1e-9, atol=1e-9, equal_nan=True)
