"""The level and spread shift detector (yujing/models/shift.py): its parts by example, and
what NAB's missed windows ask of it (a sustained shift scores after an earlier, larger
spike; a lone spike barely moves it; a series that goes flat scores; only a bounded past
is read; streaming equals one pass)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.series import STEP, T0, reads_only_its_history, streams_as_one_pass
from yujing.models.shift import ShiftDetector, nan_median, row_scale, shift_parts


def fit(v: np.ndarray, **hyper):
    """Fitted on ``v`` at station "s", metric "m", one reading every 5 minutes (shift is a
    bench candidate, not a registry kind: made directly)."""
    ts = T0 + np.arange(v.size, dtype=np.int64) * STEP
    return ShiftDetector(**hyper).fit(pd.DataFrame({"ts": ts, "station": "s", "metric": "m",
                                                    "value": v}))


def score(det, v: np.ndarray) -> np.ndarray:
    ts = T0 + np.arange(v.size, dtype=np.int64) * STEP
    return det.score(ts, v, det.new_state("s"))


def test_nan_median_by_example():
    x = np.array([[1.0, 5.0, 3.0, np.nan], [np.nan, 2.0, 4.0, np.nan], [np.nan] * 4])
    m = nan_median(x)
    assert m[:2].tolist() == [3.0, 3.0]
    assert np.isnan(m[2])


def test_row_scale_falls_back_to_the_mean_deviation_when_values_tie():
    x = np.array([[0.0, 0.0, 0.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    s = row_scale(x, nan_median(x))
    assert s[0] == pytest.approx(1.2533 * 1.0)  # MAD 0: mean |x - 0| = 1
    assert s[1] == pytest.approx(1.4826 * 1.0)


def test_level_and_spread_by_example():
    v = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 5.0, 5.0, 5.0])
    level, spread = shift_parts(v, 6, window=3, ref=6, floor=0.01)
    # at the last reading: window {5, 5, 5}, reference {0, 1, 0, 1, 0, 1}: median 0.5
    # and MAD 0.5; the flat window's spread is 0
    assert level[-1] == pytest.approx(4.5 / (1.4826 * 0.5))
    assert spread[-1] == pytest.approx(np.log2((1.4826 * 0.5 + 0.01) / 0.01))
    # a reference shorter than the window is not judged: rows 0 to 4 (row 5 has 3)
    level0 = shift_parts(v, 0, window=3, ref=6, floor=0.01)[0]
    assert level0[:5].tolist() == [0, 0, 0, 0, 0]
    assert level0[5] == pytest.approx(1.0 / (1.2533 / 3))  # window {1, 0, 1}, ref {0, 1, 0}


def test_a_sustained_shift_scores_after_a_larger_spike():
    rng = np.random.default_rng(3)
    v = rng.normal(10, 1, 3000)
    det = fit(v[:600])
    v[1000] = 40.0        # a lone spike: 30 sigma
    v[2000:2200] += 3.0   # later, a 3-sigma step that lasts
    s = score(det, v)
    assert s[990:1020].max() < 0.5
    assert s[2000:2030].max() > 0.8  # over twice the rarest 1 % of training
    assert s[2000:2030].max() > s[700:2000].max()


def test_a_series_that_goes_flat_scores():
    rng = np.random.default_rng(6)
    v = rng.normal(0.06, 0.03, 2000)
    det = fit(v[:600])
    v[1400:1480] = 0.0  # the agent stops reporting a value
    s = score(det, v)
    assert s[1400:1440].max() > 0.9
    assert s[1400:1440].max() > s[700:1400].max()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 799), max_size=10))
def test_streaming_in_any_chunks_equals_one_pass(seed, cuts):
    rng = np.random.default_rng(seed)
    v = np.round(rng.normal(0, 1, 800).cumsum(), 1)
    streams_as_one_pass(fit(v[:300], window=8, reference=60), v, cuts)


def test_only_the_bounded_past_is_read():
    rng = np.random.default_rng(5)
    v = rng.normal(0, 1, 1000)
    det = fit(v[:300], window=10, reference=50)
    assert det.history == 59
    reads_only_its_history(det, v, rng)


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(ValueError, match=">= 2"):
        ShiftDetector(window=1)
    with pytest.raises(ValueError, match="floor"):
        ShiftDetector(floor=0.0)
