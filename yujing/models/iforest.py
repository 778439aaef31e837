"""scikit-learn IsolationForest over past-only window features.

Features of reading i (all from ``v[i - window : i + 1]``, computed for a whole
chunk at once, scaled by the key's training scales so one forest can serve a
group of stations):

    value_z     (v - training median) / training scale
    level_z     (v - median of the past window) / its robust scale
    jump_z      (v - previous reading) / training step scale
    mean_resid  (v - mean of the past window) / its standard deviation
    std_ratio   log of the short (last ``short`` readings) over the long standard deviation
    rate_z      (v - reading ``short`` steps back) / (``short`` · training step scale)

The forest's raw score (``-score_samples``) is turned into a robust z against the
training rows and calibrated like every detector (``base.calibrate``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from yujing.models.base import Detector, FeatureSchema, ModelError, calibrate, reference, robust_scale
from yujing.models.features import past_mean_std, past_median_scale

FEATURES = ("value_z", "level_z", "jump_z", "mean_resid", "std_ratio", "rate_z")
LIMIT = 50.0


class IsolationForestDetector(Detector):
    kind = "iforest"
    schema = FeatureSchema("iforest-window", 1, FEATURES)

    def __init__(self, seed: int = 0, window: int = 96, short: int = 6, min_periods: int = 12,
                 n_estimators: int = 100, max_samples: int = 256,
                 max_train_rows: int = 50_000) -> None:
        super().__init__(seed)
        self.window = int(window)
        self.short = int(short)
        self.min_periods = int(min_periods)
        self.n_estimators = int(n_estimators)
        self.max_samples = int(max_samples)
        self.max_train_rows = int(max_train_rows)
        self.history = self.window

    def hyper(self) -> dict[str, Any]:
        return {"seed": self.seed, "window": self.window, "short": self.short,
                "min_periods": self.min_periods, "n_estimators": self.n_estimators,
                "max_samples": self.max_samples, "max_train_rows": self.max_train_rows}

    def features(self, v: np.ndarray, start: int, scales: dict[str, float]) -> np.ndarray:
        """(len(v) - start, 6) feature rows; rows with too little past hold NaN."""
        n = v.size
        x = v[start:]
        floor = scales["floor"]
        out = np.empty((n - start, len(FEATURES)))
        out[:, 0] = (x - scales["median"]) / scales["level"]
        med, sc = past_median_scale(v, start, self.window, self.min_periods)
        out[:, 1] = (x - med) / np.maximum(sc, floor)
        prev = np.concatenate((v[:1], v[:-1]))[start:]
        out[:, 2] = (x - prev) / scales["step"]
        mean, std = past_mean_std(v, start, self.window, self.min_periods)
        out[:, 3] = (x - mean) / np.maximum(std, floor)
        # short std includes the reading itself: a burst of noise shows at once
        smean, sstd = past_mean_std(np.concatenate((v, [0.0])), start + 1, self.short,
                                    min(self.short, 2))
        out[:, 4] = np.log((sstd + floor) / (std + floor))
        back = np.maximum(np.arange(start, n) - self.short, 0)
        out[:, 5] = (x - v[back]) / (self.short * scales["step"])
        out[np.isnan(med) | np.isnan(mean)] = np.nan
        np.clip(out, -LIMIT, LIMIT, out=out)
        return out

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        # lazy: scikit-learn takes about half a second to import and only fitting needs it
        from sklearn.ensemble import IsolationForest

        v_all = np.concatenate([v for _, v in series])
        d_all = np.concatenate([np.diff(v) for _, v in series])
        level = robust_scale(v_all)
        step = robust_scale(d_all) if d_all.size else 0.0
        tiny = 1e-6 * (abs(float(np.median(v_all))) + 1e-3)
        scales = {"median": float(np.median(v_all)), "level": max(level, step, tiny),
                  "step": max(step, 0.05 * level, tiny), "floor": max(0.2 * step, 0.02 * level, tiny)}
        X = np.concatenate([self.features(v, 0, scales) for _, v in series])
        X = X[~np.isnan(X).any(axis=1)]
        if X.shape[0] < 2:
            raise_short(self.kind, self.min_periods)
        rng = np.random.default_rng(self.seed)
        if X.shape[0] > self.max_train_rows:
            X = X[np.sort(rng.choice(X.shape[0], self.max_train_rows, replace=False))]
        forest = IsolationForest(n_estimators=self.n_estimators,
                                 max_samples=min(self.max_samples, X.shape[0]),
                                 random_state=self.seed, n_jobs=1).fit(X)
        raw = -forest.score_samples(X)
        centre = float(np.median(raw))
        spread = max(robust_scale(raw), 1e-6)
        z = (raw - centre) / spread
        return {"forest": forest, "scales": scales, "centre": centre, "spread": spread,
                "ref": reference(z)}

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        X = self.features(v, start, params["scales"])
        ok = ~np.isnan(X).any(axis=1)
        out = np.zeros(X.shape[0])
        if ok.any():
            raw = -params["forest"].score_samples(X[ok])
            out[ok] = calibrate((raw - params["centre"]) / params["spread"], params["ref"])
        return out


def raise_short(kind: str, min_periods: int) -> None:
    raise ModelError(f"{kind}: too little history to train: each series needs more than "
                     f"{min_periods} readings")
