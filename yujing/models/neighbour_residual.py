"""A station against the median of its neighbours' predictions: the residual of neighbours.py.

Its own module because the worker scores every metric of a group in one call
(``NeighbourDetector.residual_all`` lays each row of each metric as a row here, with that
metric's parameters), while training scores one metric at a time (``residual_z``): both
go through this one function, a compiled loop over rows and stations (the worker's few
rows cost no sort of rows × stations × stations arrays; training's long series no
temporary arrays of that size).
"""

from __future__ import annotations

import numpy as np

from yujing.models.sorted_windows import compiled
from yujing.models.window_median import median_of


def residual_rows(v: np.ndarray, slope: np.ndarray, intercept: np.ndarray, center: np.ndarray,
                  scale: np.ndarray, params: np.ndarray | None = None) -> np.ndarray:
    """The standardised residual of each row of ``v`` (rows × stations) against the median
    of its neighbours' predictions. ``slope`` and ``intercept`` (sets × stations ×
    stations) and ``center`` and ``scale`` (sets × stations) hold sets of parameters (one
    per metric), ``params`` the set of each row (None: the first). The station furthest
    off at a row predicts the others no more: a fault at one station moves a median of
    three neighbours by up to a MAD, which would blame them."""
    v = np.ascontiguousarray(v, dtype=np.float64)
    sets = [np.ascontiguousarray(np.broadcast_to(a, (np.shape(a)[0], *shape)), dtype=np.float64)
            for a, shape in ((slope, v.shape[1:] * 2), (intercept, v.shape[1:] * 2))]
    center, scale = (np.ascontiguousarray(np.reshape(a, (-1, v.shape[1])), dtype=np.float64)
                     for a in (center, scale))
    which = (np.zeros(v.shape[0], dtype=np.int64) if params is None
             else np.ascontiguousarray(params, dtype=np.int64))
    if which.size and (which.min() < 0 or which.max() >= min(len(sets[0]), len(center))):
        raise ValueError("residual_rows: a row's parameter set is not among those passed")
    return _residual(v, sets[0], sets[1], center, scale, which)


@compiled()
def _residual(v, slope, intercept, center, scale, which):  # pragma: no cover - compiled
    rows, k = v.shape
    z = np.full((rows, k), np.nan)
    guess = np.empty((k, k))  # guess[i, j]: station i as predicted from station j
    buf = np.empty(k)
    left = np.empty(k)
    for t in range(rows):
        p = which[t]
        worst, largest = -1, 0.0
        for i in range(k):
            for j in range(k):
                guess[i, j] = slope[p, i, j] * v[t, j] + intercept[p, i, j]
            z[t, i] = (v[t, i] - median_of(guess[i], k, buf) - center[p, i]) / scale[p, i]
            size = abs(z[t, i])
            if size == size and (worst < 0 or size > largest):  # np.nanargmax: the first
                worst, largest = i, size
        if worst < 0 or not np.isfinite(z[t]).any():
            continue
        for i in range(k):
            if i == worst:
                continue  # the worst station keeps its full prediction
            left[:] = guess[i]
            left[worst] = np.nan
            if np.isfinite(left).any():
                z[t, i] = (v[t, i] - median_of(left, k, buf) - center[p, i]) / scale[p, i]
    return z
