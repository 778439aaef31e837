"""The histogram-change detector (yujing/models/entropy.py): its parts by example, and
the properties NAB relies on (a change of distribution scores, a steady one does not;
only a bounded past is read)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.series import STEP, T0, fit_one, reads_only_its_history, streams_as_one_pass
from yujing.models import make_detector
from yujing.models.entropy import bin_of, window_bits


def fit(v: np.ndarray, **hyper):
    return fit_one("entropy", v, **hyper)


def score(det, v: np.ndarray) -> np.ndarray:
    ts = T0 + np.arange(v.size, dtype=np.int64) * STEP
    return det.score(ts, v, det.new_state("s"))


def test_bins_by_example():
    edges = np.array([1.0, 2.0])
    b = bin_of(np.array([-5.0, 0.0, 1.0, 1.5, 2.0, 3.0, 9.0]), edges, lo=0.0, hi=3.0)
    assert b.tolist() == [0, 1, 2, 2, 3, 3, 4]


def test_window_bits_by_example():
    b = np.array([1, 1, 1, 1, 2])
    bits = window_bits(b, 3, 4, window=1, ref=4)
    # window {2}; reference {1,1,1,1} smoothed: q(2) = 0.5 / (4 + 1.5)
    assert bits[0] == pytest.approx(np.log2(5.5 / 0.5))
    assert window_bits(b, 3, 3, window=1, ref=3)[0] < 1.0  # a bin the reference holds


def test_no_reference_scores_zero():
    assert window_bits(np.array([1, 2, 3]), 5, 0, window=5, ref=10).tolist() == [0, 0, 0]


def test_a_steady_series_that_starts_to_oscillate_scores_at_the_change():
    rng = np.random.default_rng(4)
    v = rng.normal(0, 1, 2000)
    det = fit(v[:600])
    v[1500:] = np.where(np.arange(500) % 2, 1.2, -1.2)  # inside the range, a new mix
    s = score(det, v)
    assert s[1500:1530].max() > 0.5
    assert s[1500:1530].max() > s[700:1500].max()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 799), max_size=12))
def test_streaming_in_any_chunks_equals_one_pass(seed, cuts):
    rng = np.random.default_rng(seed)
    v = np.round(rng.normal(0, 1, 800).cumsum(), 1)
    streams_as_one_pass(fit(v[:300], window=12, reference=100), v, cuts)


def test_only_the_bounded_past_is_read():
    rng = np.random.default_rng(5)
    v = rng.normal(0, 1, 1000)
    det = fit(v[:300], window=10, reference=50)
    assert det.history == 59
    reads_only_its_history(det, v, rng)


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(ValueError, match=">= 1"):
        make_detector("entropy", window=0)
