"""The worker's rolling medians of the newest rows (models/window_median.py) equal pandas'
rolling medians over the whole past, NaN and short windows included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yujing.models.window_median import level_and_noise


@pytest.mark.parametrize("past", [0, 5, 30, 336])
def test_the_newest_rows_medians_equal_pandas_rolling_medians(past):
    rng = np.random.default_rng(past)
    both = rng.normal(size=(past + 7, 4))
    both[rng.random(both.shape) < 0.2] = np.nan
    both[:, 3] = np.nan  # a station with no readings at all
    frame = pd.DataFrame(both)
    want_level = frame.rolling(336, min_periods=24).median().shift(1).to_numpy()[past:]
    want_noise = frame.diff().abs().rolling(6, min_periods=3).median().to_numpy()[past:]
    level, noise, _ = level_and_noise(both, past, (336, 24), (6, 3))
    np.testing.assert_allclose(level, want_level, equal_nan=True)
    np.testing.assert_allclose(noise, want_noise, equal_nan=True)
    assert np.isfinite(noise).any()  # the comparison is not all NaN


def test_nan_median_equals_numpys_nanmedian():
    from yujing.models.window_median import nan_median

    rng = np.random.default_rng(3)
    a = rng.normal(size=(50, 6, 7))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[0, 0] = np.nan  # a row with no finite value: NaN, as nanmedian (without its warning)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanmedian(a, axis=-1)
    np.testing.assert_allclose(nan_median(a), want, equal_nan=True)
    assert np.isnan(nan_median(a)[0, 0]) and np.isfinite(nan_median(a)).sum() > 290
