"""The neighbours detector (yujing/models/neighbours.py) on a synthetic group of stations:
one weather signal seen by every station with its own offset, gain and sensor noise."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.models.base import ModelError
from yujing.models.neighbours import NeighbourDetector, NeighbourState

STATIONS = ["a", "b", "c", "d"]
HOUR = 3_600_000


def group(rows: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Hourly rows of two metrics at four stations: shared weather (a daily cycle and a
    slow random walk), a per-station offset and gain, independent noise of 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    weather = 5 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.3, rows))
    wind = 3 + np.abs(np.cumsum(rng.normal(0, 0.2, rows))) % 6
    temp = np.column_stack([off + gain * weather + rng.normal(0, 0.5, rows)
                            for off, gain in ((0, 1), (2, 0.9), (-1, 1.1), (4, 1))])
    wspm = np.column_stack([wind * gain + rng.normal(0, 0.3, rows) for gain in (1, 1.2, 0.8, 1)])
    return t.astype(np.int64) * HOUR, {"TEMP": temp, "WSPM": wspm}


def fitted(far: float, seed: int = 1) -> NeighbourDetector:
    ts, values = group(6000, seed)
    return NeighbourDetector(STATIONS, ["TEMP", "WSPM"]).fit(ts, values, far)


@pytest.fixture(scope="module")
def det() -> NeighbourDetector:
    return fitted(0.002)


def test_a_held_step_alarms_for_as_long_as_it_lasts_and_not_before(det: NeighbourDetector) -> None:
    _, values = group(1500, seed=2)
    values["TEMP"][1000:1048, 0] += 3.0  # 6 noise sigmas, far below the daily swing of 10
    alarm = det.alarm(det.score(values))
    assert not alarm[900:1000, 0].any()
    assert alarm[:1000].sum() <= 10  # the rate it was calibrated for (2 in 1000 rows)
    assert alarm[1000:1048, 0].mean() > 0.8  # flagged for most of its rows, not only the onset
    assert alarm[1000:1003, 0].any()  # seen at once
    assert not alarm[1000:1048, 1:].any()  # the neighbours themselves are not blamed
    assert not alarm[1060:1200, 0].any()  # gone within hours after the step ends


def test_a_slow_drift_is_found_before_its_end(det: NeighbourDetector) -> None:
    _, values = group(1500, seed=3)
    values["TEMP"][1000:1072, 2] += np.linspace(0, 4.0, 72)
    alarm = det.alarm(det.score(values))
    assert not alarm[900:1000].any()
    first = 1000 + int(np.flatnonzero(alarm[1000:1072, 2])[0])
    assert first < 1060
    assert alarm[1060:1072, 2].all()


def test_missing_neighbours_predict_from_those_present_and_none_present_is_no_score(
        det: NeighbourDetector) -> None:
    _, values = group(1200, seed=4)
    values["TEMP"][600:700, 1:3] = np.nan  # two of three neighbours away
    values["TEMP"][800:850, 1:] = np.nan  # every neighbour away
    values["WSPM"][800:850, 1:] = np.nan
    values["TEMP"][900:950, 0] = np.nan  # the sensor itself missing
    values["WSPM"][900:950, 0] = np.nan
    scores = det.score(values)
    z = det.residual_z("TEMP", values["TEMP"])
    assert np.isfinite(z[600:700, 0]).all()  # still predicted, from the one left
    assert np.abs(z[600:700, 0]).max() < 10
    assert np.isnan(z[800:850, 0]).all() and (scores[800:850, 0] == 0).all()
    assert (scores[900:950, 0] == 0).all()
    assert not det.alarm(scores)[800:950, 0].any()


def test_calibration_hits_its_rate_on_held_out_normal_data() -> None:
    for far in (0.01, 0.05):
        det = fitted(far, seed=5)
        _, values = group(6000, seed=6)
        rate = det.alarm(det.score(values)).mean()
        assert far / 2.5 <= rate <= far * 2.5, (far, rate)


def test_chunked_scoring_equals_scoring_at_once(det: NeighbourDetector) -> None:
    _, values = group(700, seed=7)
    whole = det.score(values)
    state = det.new_state()
    assert isinstance(state, NeighbourState)
    parts = [det.score({m: v[a:b] for m, v in values.items()}, state)
             for a, b in ((0, 5), (5, 333), (333, 700))]
    assert np.allclose(np.concatenate(parts), whole, atol=1e-12)


def test_few_rows_at_a_time_keep_the_levels_sorted_windows_and_score_as_at_once(
        det: NeighbourDetector) -> None:
    """The worker's calls (a few rows each) keep the local level's sorted windows in the
    state between calls, a long one too; a long call without them (pandas' path) or a
    restore (a state without them) sorts them afresh; the scores are those of one pass."""
    _, values = group(500, seed=8)
    whole = det.score(values)
    state, parts, seen, a = det.new_state(), [], [], 0
    for size in [3, 1, 2] * 50 + [60] + [4] * 10 + [70] + [2] * 3:
        parts.append(det.score({m: v[a:a + size] for m, v in values.items()}, state))
        seen.append(state.level_windows)
        a += size
        if a in (150, 300):  # as a restore: the same arrays' values, no windows
            state = NeighbourState(*(dict(getattr(state, f)) for f in ("ewma", "up", "down", "past")))
    parts.append(det.score({m: v[a:] for m, v in values.items()}, state))
    assert np.array_equal(np.concatenate(parts), whole)
    assert seen[0] is not None and all(w is seen[0] for w in seen[:75])  # rows 0..149
    assert seen[75] is not None and seen[75] is not seen[0] and all(w is seen[75] for w in seen[75:150])
    assert seen[150] is None and seen[151] is not None and seen[152] is seen[151]
    # a long call with kept windows (a worker's large pass) keeps them: no pandas
    assert all(w is seen[151] for w in seen[151:])


def test_a_metric_whose_relation_changes_inside_training_is_left_out() -> None:
    ts, values = group(4000, seed=8)
    values["WSPM"][3000:, 0] += np.random.default_rng(9).normal(0, 5, 1000)  # the calibration part
    det = NeighbourDetector(STATIONS, ["WSPM"]).fit(ts, values, 0.01)
    assert det.meta["dropped"] == ["a/WSPM"]
    _, test = group(1000, seed=10)
    test["WSPM"][500:540, 0] += 5.0
    scores = det.score(test)
    assert (scores[:, 0] == 0).all()  # left to other detectors
    assert scores[:, 1:].max() > 0


def test_bad_arguments_fail_with_the_fix() -> None:
    with pytest.raises(ModelError, match="two or more stations"):
        NeighbourDetector(["a"], ["TEMP"])
    ts, values = group(1000, seed=1)
    with pytest.raises(ModelError, match="between 0 and 1"):
        NeighbourDetector(STATIONS, ["TEMP"]).fit(ts, values, 1.5)
    with pytest.raises(ModelError, match="before fit"):
        NeighbourDetector(STATIONS, ["TEMP"]).score(values)


def test_a_lasting_change_of_the_relation_is_absorbed_by_the_local_level(
        det: NeighbourDetector) -> None:
    _, values = group(1500, seed=11)
    values["TEMP"][300:, 0] += 3.0  # a sensor moved or replaced: a new offset, for good
    alarm = det.alarm(det.score(values))
    assert alarm[300:340, 0].mean() > 0.8  # a step at first
    assert alarm[300 + 200:, 0].mean() <= 0.005  # then the new normal (past half of 14 days):
    # the calibrated rate (2 in 1000 rows), where a fixed level would alarm on every row


def test_a_noisy_sensor_is_flagged_for_most_of_its_rows(det: NeighbourDetector) -> None:
    _, values = group(1500, seed=12)
    noise = np.random.default_rng(13).normal(0, 3.0, 48)  # 6 noise sigmas (the bench: 1 u), no offset
    values["TEMP"][1000:1048, 1] += noise
    alarm = det.alarm(det.score(values))
    assert alarm[1003:1048, 1].mean() > 0.8
    # the neighbours: at most the calibrated rate (2 in 1000 rows each), not the fault's rows
    assert alarm[1000:1048, [0, 2, 3]].sum() <= 1
    assert not alarm[1060:1200, 1].any()


def test_screened_by_blocks_a_faulty_calibration_block_is_left_out_not_the_metric() -> None:
    ts, values = group(6000, seed=14)
    clean = NeighbourDetector(STATIONS, ["WSPM"]).fit(ts, values, 0.01)
    values["WSPM"][4250:4900, 0] += np.random.default_rng(15).normal(0, 5, 650)
    whole = NeighbourDetector(STATIONS, ["WSPM"]).fit(ts, values, 0.01)
    assert whole.meta["dropped"] == ["a/WSPM"]  # the default: the metric, as it was
    det = NeighbourDetector(STATIONS, ["WSPM"], screen="blocks").fit(ts, values, 0.01)
    assert det.meta["dropped"] == []
    assert det.meta["calibration_rows_left_out"] == {"a/WSPM": 720}  # its 30-day block
    ratio = det.params["WSPM"]["threshold"][0] / clean.params["WSPM"]["threshold"][0]
    assert 0.7 < ratio < 1.3  # the threshold is the clean one's, not the noise's
