"""PCA T² + Q (SPE): the classical multivariate process-monitoring detector, per station.

Fitted on robust-scaled station rows (median and IQR per metric, station.py), it keeps
the principal components that explain ``variance`` of the training variance (at least
one, at most all but one, so the residual space is never empty). A row is unusual in two
ways: **T²**, Hotelling's statistic inside the model plane (every sensor moved, but
together, further than training went), and **Q**, the squared prediction error off the
plane (the sensors no longer move together: a decoupled pair, one sensor stuck, drifting
or noisy while the others follow the process). Each is divided by its 99th training
percentile and the larger one is the row's statistic, which is calibrated like every
detector's (0.5 = the rarest 1 % of training rows). A row's score depends on that row
only (``lags`` = 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from yujing.models.base import FeatureSchema, calibrate, reference
from yujing.models.station import StationDetector


def t2_and_q(f: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Hotelling's T² and the squared prediction error Q of feature rows."""
    c = f - params["mean"]
    t = c @ params["loadings"]
    t2 = (t * t / params["eigen"]).sum(axis=1)
    resid = c - t @ params["loadings"].T
    return t2, (resid * resid).sum(axis=1)


class PcaT2Q(StationDetector):
    kind = "pca"
    schema = FeatureSchema("pca-t2q", 1, ("robust_scaled_row", "t2", "q"))

    def __init__(self, seed: int = 0, metrics: list[str] | tuple[str, ...] = (),
                 max_age_ms: int = 0, variance: float = 0.9) -> None:
        super().__init__(seed, metrics, max_age_ms)
        if not 0 < float(variance) < 1:
            raise ValueError(f"pca: variance {variance} must lie between 0 and 1 (e.g. 0.9)")
        self.variance = float(variance)

    def hyper(self) -> dict[str, Any]:
        return dict(super().hyper(), variance=self.variance)

    def _fit_rows(self, f: np.ndarray) -> dict[str, Any]:
        mean = f.mean(axis=0)
        _, s, vt = np.linalg.svd(f - mean, full_matrices=False)
        eigen = s * s / max(f.shape[0] - 1, 1)
        share = np.cumsum(eigen) / max(float(eigen.sum()), 1e-12)
        k = int(np.searchsorted(share, self.variance) + 1)
        k = min(max(k, 1), f.shape[1] - 1)
        params = {"mean": mean, "loadings": vt[:k].T.copy(),
                  "eigen": np.maximum(eigen[:k], 1e-9), "components": k}
        t2, q = t2_and_q(f, params)
        params["ref_t2"] = reference(t2, floor=1e-9)
        params["ref_q"] = reference(q, floor=1e-9)
        params["ref"] = reference(self._stat(t2, q, params), floor=1e-9)
        return params

    @staticmethod
    def _stat(t2: np.ndarray, q: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        return np.maximum(t2 / params["ref_t2"], q / params["ref_q"])

    def _score_rows(self, f: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        t2, q = t2_and_q(f, params)
        return calibrate(self._stat(t2, q, params), params["ref"])
