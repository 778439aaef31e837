"""local_kernel.py's window sums are numpy's own numbers: local.window_mean went from
numpy's sum over sliding windows to the compiled kernel (which the worker's few-rows path
shares), and no figure of the whole-series path may move by a bit for it."""

from __future__ import annotations

import numpy as np
import pytest

from yujing.models import local
from yujing.models.local_kernel import window_sums


def numpy_window_mean(x: np.ndarray, window: int) -> np.ndarray:
    """The former local.window_mean over a rows × columns array: each window's finite
    values summed by ``np.sum`` (numpy's pairwise order) on a contiguous copy."""
    pad = np.vstack([np.full((window - 1, x.shape[1]), np.nan), x])
    w = np.lib.stride_tricks.sliding_window_view(pad, window, axis=0)  # rows × columns × window
    ok = np.isfinite(w)
    count = ok.sum(axis=-1)
    total = np.ascontiguousarray(np.where(ok, w, 0.0)).sum(axis=-1)
    return np.where(count >= max(1, window // 2), total / np.maximum(count, 1), np.nan)


@pytest.mark.parametrize("window", [3, 7, 8, 12, 17, 24, 100, 128])
def test_window_means_are_numpys_sums_to_the_bit(window) -> None:
    rng = np.random.default_rng(window)
    # magnitudes over twelve decades: a different order of addition changes the last bits
    x = rng.normal(size=(600, 5)) * 10.0 ** rng.integers(-6, 6, size=(600, 5))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[50:60, 1] = np.inf  # not finite: left out, as numpy's path left it out
    want = numpy_window_mean(x, window)
    got = local.window_mean(x, window)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.isfinite(got).mean() > 0.5
    if window >= 12:  # the order matters here: a left-to-right sum differs somewhere
        pad = np.vstack([np.full((window - 1, 5), np.nan), x])
        w = np.lib.stride_tricks.sliding_window_view(pad, window, axis=0)
        flat = np.where(np.isfinite(w), w, 0.0)
        left = np.zeros(flat.shape[:2])
        for i in range(window):
            left = left + flat[..., i]
        count = np.isfinite(w).sum(axis=-1)
        seq = np.where(count >= window // 2, left / np.maximum(count, 1), np.nan)
        assert not np.array_equal(seq, want, equal_nan=True)


def test_window_sums_count_the_finite_values_and_start_where_asked() -> None:
    cols = np.array([[1.0, np.nan, 2.0, np.inf, 4.0, 8.0]])
    sums, counts = window_sums(cols, 3, 2)
    assert sums.tolist() == [[3.0, 2.0, 6.0, 12.0]]
    assert counts.tolist() == [[2, 1, 2, 2]]


def test_windows_wider_than_numpys_block_are_refused() -> None:
    with pytest.raises(ValueError, match="128"):
        window_sums(np.zeros((1, 300)), 200, 0)
