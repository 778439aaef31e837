"""A station against the median of its neighbours' predictions: the residual of neighbours.py.

Its own module because the worker scores every metric of a group in one call
(``NeighbourDetector.residual_all`` lays each row of each metric as a row here, with that
metric's parameters), while training scores one metric at a time (``residual_z``): both
go through this one function.
"""

from __future__ import annotations

import numpy as np

from yujing.models.window_median import nan_median


def residual_rows(v: np.ndarray, slope: np.ndarray, intercept: np.ndarray, center: np.ndarray,
                  scale: np.ndarray) -> np.ndarray:
    """The standardised residual of each row of ``v`` (rows × stations) against the median
    of its neighbours' predictions; ``slope`` and ``intercept`` (1 or rows × stations ×
    stations) and ``center`` and ``scale`` (stations, or rows × stations) are the row's
    metric's. The station furthest off at a row predicts the others no more: a fault at
    one station moves a median of three neighbours by up to a MAD, which would blame them."""
    # guess[t, i, j]: station i at row t as predicted from station j (NaN on the diagonal)
    guess = slope * v[:, None, :] + intercept
    z = (v - nan_median(guess) - center) / scale
    rows = np.flatnonzero(np.isfinite(z).any(axis=1))
    worst = np.full(v.shape[0], -1)
    worst[rows] = np.nanargmax(np.abs(z[rows]), axis=1)
    left = guess.copy()
    left[rows, :, worst[rows]] = np.nan
    others = np.isfinite(left).any(axis=2)
    others[rows, worst[rows]] = False  # the worst station keeps its full prediction
    z[others] = ((v - nan_median(left) - center) / scale)[others]
    return z
