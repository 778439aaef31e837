"""The worker's paths of the sensor-faults kind equal the paths they replace, to the bit:
local's views of the new rows (models/local_tail.py) against local.py's own, the stuck
runs and the latch of a few rows (models/fault_parts.py) against the per-station loops. Ties
(readings to 0.1), missing readings and a station silent for days are in every series."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.models import local
from yujing.models.fault_parts import FEW_ROWS, latch_from, new_state, runs_from
from yujing.models.local import LocalResidual
from yujing.models.local_tail import tail_views, usable

STATIONS = ["a", "b", "c", "d", "e"]
ENDS = ("held", "steps")


def group(rows: int, seed: int) -> dict[str, np.ndarray]:
    """TEMP and PRES at five stations sharing the weather, read to 0.1 (many ties), 5 % of
    the readings missing and station d silent for four days."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    weather = 5 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.3, rows))
    out = {}
    for m, scale in (("TEMP", 0.3), ("PRES", 0.1)):
        v = np.column_stack([off + weather + rng.normal(0, scale, rows) for off in range(5)])
        v = np.round(v, 1)
        v[rng.random(v.shape) < 0.05] = np.nan
        v[400:500, 3] = np.nan
        out[m] = v
    return out


@pytest.fixture(scope="module")
def model() -> LocalResidual:
    return LocalResidual(STATIONS, ["TEMP", "PRES"], ENDS).fit(group(1200, 1))


def stream(model: LocalResidual, values: dict, sizes, tail: str | None) -> dict[str, list]:
    """Each chunk's views as fault_parts.local_statistics gets them: the last HISTORY rows
    before the chunk passed again, the held view's z carried; ``tail``: local_tail.py's
    path with its sorted windows kept between chunks ("kept") or sorted afresh at each
    ("fresh"), else (None) local.py's whole-series path over the same rows (pandas'
    rolling windows)."""
    zi = {m: np.empty((0, len(STATIONS))) for m in model.metrics}
    windows = None
    recent = {m: v[:0] for m, v in values.items()}
    got: dict[str, list] = {m: [] for m in model.metrics}
    a, n = 0, next(iter(values.values())).shape[0]
    for size in sizes:
        if a >= n:
            break
        both = {m: np.vstack([recent[m], v[a:a + size]]) for m, v in values.items()}
        k = min(size, n - a)
        if tail:
            assert usable(model, k, zi)
            out, windows = tail_views(model, both, k, zi, windows if tail == "kept" else None)
        else:
            out = model.explain(both, zi)
        for m in model.metrics:
            got[m].append(np.stack([out[m][v][-k:] for v in local.VIEWS]))
            recent[m] = both[m][-local.HISTORY:]
        a += size
    return got


@pytest.mark.parametrize("sizes", [[1] * 700, [3] * 240, [17] * 45, [2, 250, 1, 400],
                                   np.random.default_rng(2).integers(1, FEW_ROWS, 60).tolist()])
@pytest.mark.parametrize("tail", ["kept", "fresh"])
def test_the_new_rows_views_equal_locals_to_the_bit(model, sizes, tail) -> None:
    values = group(700, 3)
    values["TEMP"][600:640, 2] += 3.0  # a step: the views are not all small
    # every station noisy at once: rows of a common change, not scored (local.py)
    values["PRES"][450:480] += np.random.default_rng(4).normal(0, 2.0, (30, len(STATIONS)))
    whole = local.views(values["PRES"], model.floor["PRES"], model.usual["PRES"],
                        model.common_ref["PRES"], model.ends)
    assert whole["common"][450:480].sum() >= 5
    want, got = stream(model, values, sizes, None), stream(model, values, sizes, tail)
    for m in model.metrics:
        w, g = np.concatenate(want[m], axis=1), np.concatenate(got[m], axis=1)
        assert np.array_equal(w, g, equal_nan=True), m
        assert np.isfinite(g[:, 400:]).mean() > 0.5  # the comparison is not all NaN


def test_the_new_rows_views_need_steps_in_ends_and_the_held_rows() -> None:
    plain = LocalResidual(STATIONS, ["TEMP"])
    assert not usable(plain, 1, {"TEMP": np.empty((0, 5))})
    fitted = LocalResidual(STATIONS, ["TEMP"], ENDS)
    assert not usable(fitted, 1, None) and usable(fitted, 1, {"TEMP": np.empty((0, 5))})


@pytest.mark.parametrize("last", [1, 5, 40])
def test_the_window_mean_of_the_last_rows_is_the_whole_ones_last_rows(last) -> None:
    rng = np.random.default_rng(last)
    x = rng.normal(size=(80, 6))
    x[rng.random(x.shape) < 0.3] = np.nan
    for window in (12, 24):
        for rows in (x, x[:last + 3]):  # windows reaching before the first row too
            want = local.window_mean(rows, window)[-last:]
            assert np.array_equal(local.window_mean(rows, window, last), want, equal_nan=True)
        naive = np.array([[np.nanmean(c) if np.isfinite(c).sum() >= window // 2 else np.nan
                           for c in x[max(0, t - window + 1):t + 1].T] for t in range(80)])
        assert np.allclose(local.window_mean(x, window), naive, rtol=1e-12, equal_nan=True)
        one = local.window_mean(x[:, 2], window, last)  # a single series: the column's numbers
        assert np.array_equal(one, local.window_mean(x, window, last)[:, 2], equal_nan=True)
        three = np.stack([x, x[::-1]])  # metrics × rows × columns: each metric its own
        want = np.stack([local.window_mean(r, window)[-last:] for r in three])
        assert np.array_equal(local.window_mean(three, window, last), want, equal_nan=True)


def test_stuck_runs_of_one_row_at_a_time_equal_the_station_loop() -> None:
    rng = np.random.default_rng(5)
    v = np.round(rng.normal(0, 0.6, (300, 4)), 0)
    v[rng.random(v.shape) < 0.2] = np.nan
    v[100:160, 2] = np.nan
    rows = (np.full(4, np.nan), np.zeros(4))
    whole = runs_from(v, *rows)  # more than FEW_ROWS rows: the loop over stations
    last, run, out = np.full(4, np.nan), np.zeros(4), []
    for a in range(0, 300):
        out.append(runs_from(v[a:a + 1], last, run))
    assert np.array_equal(np.vstack(out), whole, equal_nan=True)
    assert np.array_equal(last, rows[0], equal_nan=True) and np.array_equal(run, rows[1])


@pytest.mark.parametrize("patience", [1, 3])
def test_the_latch_of_a_few_rows_equals_the_station_loop(patience) -> None:
    rng = np.random.default_rng(patience)
    rows, k = 400, 4
    start = rng.random((rows, k)) < 0.03
    keep = rng.random((rows, k)) < 0.6
    present = rng.random((rows, k)) < 0.9
    present[200:260, 1] = False
    whole_state = new_state(_Blank(), ["T"], k, [patience])
    whole = latch_from(start, keep, present, patience, whole_state, 0)  # the station loop
    assert whole.any() and rows > FEW_ROWS
    for sizes in ([1] * rows, [7] * 58):
        state, out, a = new_state(_Blank(), ["T"], k, [patience]), [], 0
        for size in sizes:
            sl = slice(a, a + size)
            out.append(latch_from(start[sl], keep[sl], present[sl], patience, state, 0))
            a += size
        assert np.array_equal(np.vstack(out), whole)
        for key, arr in whole_state.latch.items():
            assert np.array_equal(state.latch[key], arr), key


class _Blank:
    """A NeighbourState's four fields, empty (the latch reads none of them)."""

    ewma = up = down = past = {}


def test_the_worker_keeps_the_sorted_windows_between_calls_and_drops_them_after_a_restore(
        model) -> None:
    """fault_parts.local_statistics keeps local's sorted yardstick windows in the state
    between calls, a call of more than FEW_ROWS rows too (a worker's large pass stays on
    the tail's path); a restored state sorts them afresh, and its first call of more than
    FEW_ROWS rows takes local.py's whole-series path (no windows after it)."""
    from yujing.models.fault_parts import local_statistics

    values = group(300, 4)
    state = new_state(_Blank(), model.metrics, len(STATIONS), [])
    a, seen = 0, []
    for size in (1, 3, 2, FEW_ROWS + 1, 1, 2):
        local_statistics(model, {m: v[a:a + size] for m, v in values.items()}, state)
        seen.append(state.windows)
        a += size
    assert seen[0] is not None and all(w is seen[0] for w in seen)
    assert all(w is state.recent[m] for w, m in zip(seen[5].owner, model.metrics))
    state.recent = {m: v.copy() for m, v in state.recent.items()}  # as a restore would
    local_statistics(model, {m: v[a:a + FEW_ROWS + 1] for m, v in values.items()}, state)
    assert state.windows is None
    a += FEW_ROWS + 1
    local_statistics(model, {m: v[a:a + 1] for m, v in values.items()}, state)
    assert state.windows is not None and state.windows is not seen[0]
