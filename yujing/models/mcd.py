"""Robust Mahalanobis distance over lag-embedded station rows (scikit-learn's MinCovDet).

Why this over T² + Q: many sensor faults are not visible in one row. A stuck sensor
shows a normal value but no movement; a noisy one moves too much; a spike is a jump.
So each metric contributes three features computed from the current row and the
``window`` rows before it (``lags`` = ``window``): its robust-scaled value, its step
from the previous row, and the log of its typical step size over the window (mean
absolute step, floored at 1e-3 scaled units: a stuck sensor sits far below anything
seen in training). The covariance of these features is estimated by the Minimum
Covariance Determinant (Rousseeuw; scikit-learn's ``MinCovDet``), which ignores the
most outlying part of training, so a fault hidden in the "normal" history does not
widen the model. The squared robust distance is calibrated like every detector's score.

The fit uses at most ``max_fit_rows`` training rows (a seeded sample): MCD's cost grows
with the rows and the estimate does not improve much beyond a few thousand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from yujing.models.base import FeatureSchema, calibrate, reference
from yujing.models.station import StationDetector

STEP_FLOOR = 1e-3


class RobustMahalanobis(StationDetector):
    kind = "mcd"
    schema = FeatureSchema("mcd-lagged", 1, ("robust_scaled_value", "step", "log_mean_abs_step"))

    def __init__(self, seed: int = 0, metrics: list[str] | tuple[str, ...] = (),
                 max_age_ms: int = 0, window: int = 6, max_fit_rows: int = 5000,
                 support: float | None = None) -> None:
        super().__init__(seed, metrics, max_age_ms)
        if int(window) < 2:
            raise ValueError(f"mcd: window {window} must be at least 2 rows")
        self.window = int(window)
        self.max_fit_rows = int(max_fit_rows)
        self.support = None if support is None else float(support)
        self.lags = self.window

    def hyper(self) -> dict[str, Any]:
        return dict(super().hyper(), window=self.window, max_fit_rows=self.max_fit_rows,
                    support=self.support)

    def _features(self, z: np.ndarray, start: int) -> np.ndarray:
        n, m = z.shape
        out = np.full((n - start, 3 * m), np.nan)
        if n == 0:
            return out
        step = np.full_like(z, np.nan)
        step[1:] = z[1:] - z[:-1]
        # mean absolute step over the window ending at each row (NaN until the window is full)
        typical = np.full_like(z, np.nan)
        w = self.window
        if n >= w + 1:
            typical[w:] = np.abs(sliding_window_view(step[1:], w, axis=0)).mean(axis=2)
        out[:, :m] = z[start:]
        out[:, m:2 * m] = step[start:]
        out[:, 2 * m:] = np.log(np.maximum(typical[start:], STEP_FLOOR))
        return out

    def _fit_rows(self, f: np.ndarray) -> dict[str, Any]:
        # lazy: scikit-learn is heavy and only fitting needs it (scoring is numpy)
        from sklearn.covariance import MinCovDet

        rng = np.random.default_rng(self.seed)
        sample = f if f.shape[0] <= self.max_fit_rows else f[
            np.sort(rng.choice(f.shape[0], self.max_fit_rows, replace=False))]
        mcd = MinCovDet(random_state=self.seed, support_fraction=self.support).fit(sample)
        cov = mcd.covariance_ + 1e-6 * np.eye(f.shape[1])  # constant features stay invertible
        params = {"location": mcd.location_.copy(), "precision": np.linalg.inv(cov)}
        params["ref"] = reference(self._distance(f, params), floor=1e-9)
        return params

    @staticmethod
    def _distance(f: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        c = f - params["location"]
        return ((c @ params["precision"]) * c).sum(axis=1)

    def _score_rows(self, f: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        return calibrate(self._distance(f, params), params["ref"])
