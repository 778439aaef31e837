"""neighbour_residual.residual_rows, a compiled loop since 2026-12-05, gives the numbers
of the numpy arrays it replaced (kept here as the oracle): neighbours.py's thresholds were
fitted on them and no score may move by a bit for the change."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.models.neighbour_residual import residual_rows
from yujing.models.window_median import nan_median


def numpy_residual(v, slope, intercept, center, scale):
    """The former residual_rows: every row's predictions at once (rows × k × k)."""
    guess = slope * v[:, None, :] + intercept
    z = (v - nan_median(guess) - center) / scale
    rows = np.flatnonzero(np.isfinite(z).any(axis=1))
    worst = np.full(v.shape[0], -1)
    worst[rows] = np.nanargmax(np.abs(z[rows]), axis=1)
    left = guess.copy()
    left[rows, :, worst[rows]] = np.nan
    others = np.isfinite(left).any(axis=2)
    others[rows, worst[rows]] = False
    z[others] = ((v - nan_median(left) - center) / scale)[others]
    return z


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_the_residual_is_the_numpy_ones_to_the_bit(k) -> None:
    rng = np.random.default_rng(k)
    v = rng.normal(size=(2000, k)) * 10 + np.arange(k)
    v[rng.random(v.shape) < 0.15] = np.nan  # missing readings
    v[:200] = np.round(v[:200])  # ties
    v[300:320, 0] = np.nan  # a station silent
    slope, intercept = rng.normal(1, 0.1, (k, k)), rng.normal(0, 3, (k, k))
    np.fill_diagonal(slope, np.nan)
    np.fill_diagonal(intercept, np.nan)
    if k > 2:
        slope[0, 1] = np.nan  # a neighbour that never predicts station 0 (others do)
    center, scale = rng.normal(0, 0.1, k), rng.uniform(0.5, 2, k)
    want = numpy_residual(v, slope[None], intercept[None], center, scale)
    got = residual_rows(v, slope[None], intercept[None], center, scale)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.isfinite(got).mean() > 0.7
    # two parameter sets (two metrics), each row its own: residual_all's layout
    sets = [np.stack([a, b]) for a, b in ((slope, slope * 1.1), (intercept, intercept - 1),
                                           (center, center + 0.2), (scale, scale * 2))]
    which = np.arange(v.shape[0]) % 2
    want = numpy_residual(v, *(s[which] for s in sets))
    assert np.array_equal(residual_rows(v, *sets, which), want, equal_nan=True)
    assert not np.array_equal(residual_rows(v, *sets), want, equal_nan=True)


def test_a_parameter_set_or_window_end_out_of_range_is_refused_not_read() -> None:
    """The compiled loops check no bounds: their wrappers refuse what would read outside."""
    from yujing.models.window_median import window_medians

    v = np.ones((4, 3))
    slope = np.ones((1, 3, 3))
    with pytest.raises(ValueError, match="parameter set"):
        residual_rows(v, slope, slope, np.zeros(3), np.ones(3), np.array([0, 1, 0, 0]))
    with pytest.raises(ValueError, match="end at row 5"):
        window_medians(v, range(1, 6), 3, 1)
