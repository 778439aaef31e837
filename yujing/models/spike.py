"""Change and spike detector: sudden rises, drops and level shifts against the recent past.

Three robust statistics per reading, each from the ``window`` readings before it:

- level: |v - median| / scale of the past window (a spike or a step);
- jump: the step from the previous reading against the past steps' median and scale
  (a sudden rise even when the level is still ordinary);
- shift: a two-sided CUSUM of the clipped level residuals over the last ``cusum_span``
  readings (a sustained shift too small for one reading to stand out). It is a windowed
  CUSUM (max over start points in the span), so the score still depends only on a
  bounded past and streaming equals batch scoring.

Each is calibrated against its training distribution (``base.calibrate``) and the
score is the largest of the three.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Detector, FeatureSchema, calibrate, reference, robust_scale
from .features import past_median_scale, rolling_min

CLIP = 8.0  # residuals beyond this many scales count as this much in the CUSUM


class SpikeDetector(Detector):
    kind = "spike"
    schema = FeatureSchema("spike", 1, ("level_z", "jump_z", "cusum_z"))

    def __init__(self, seed: int = 0, window: int = 96, cusum_span: int = 24,
                 drift: float = 0.5, min_periods: int = 12) -> None:
        super().__init__(seed)
        self.window = int(window)
        self.cusum_span = int(cusum_span)
        self.drift = float(drift)
        self.min_periods = int(min_periods)
        # level stats at the CUSUM span's oldest reading need their own window behind it
        self.history = self.window + self.cusum_span + 1

    def hyper(self) -> dict[str, Any]:
        return {"seed": self.seed, "window": self.window, "cusum_span": self.cusum_span,
                "drift": self.drift, "min_periods": self.min_periods}

    def _raw(self, v: np.ndarray, start: int, floor: float, dfloor: float) -> np.ndarray:
        """(n - start, 3) robust statistics; NaN where the past is too short."""
        n = v.size
        c0 = max(start - self.cusum_span, 0)  # CUSUM needs residuals this far back
        med, scale = past_median_scale(v, c0, self.window, self.min_periods)
        resid = (v[c0:] - med) / np.maximum(scale, floor)
        out = np.full((n - start, 3), np.nan)
        out[:, 0] = np.abs(resid[start - c0:])
        if n >= 2:
            dv = np.diff(v)  # dv[i - 1] = v[i] - v[i - 1]
            ds = max(start - 1, 0)
            dmed, dscale = past_median_scale(dv, ds, self.window, self.min_periods)
            jump = np.abs(dv[ds:] - dmed) / np.maximum(dscale, dfloor)
            out[max(1 - start, 0):, 1] = jump[start - 1 - ds if start >= 1 else 0:]
        r = np.nan_to_num(np.clip(resid, -CLIP, CLIP), nan=0.0)
        up = np.cumsum(r - self.drift)
        down = np.cumsum(-r - self.drift)
        # windowed CUSUM: S_i = C_i - min(C_{i-span}, ..., C_i), with C_{-1} = 0
        up_s = up - rolling_min(np.concatenate(([0.0], up)), self.cusum_span)[1:]
        down_s = down - rolling_min(np.concatenate(([0.0], down)), self.cusum_span)[1:]
        cus = np.maximum(up_s, down_s)[start - c0:]
        cus[np.isnan(out[:, 0])] = np.nan
        out[:, 2] = np.maximum(cus, 0.0)
        return out

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        v_all = np.concatenate([v for _, v in series])
        d_all = np.concatenate([np.diff(v) for _, v in series])
        level_scale = robust_scale(v_all)
        step_scale = robust_scale(d_all) if d_all.size else 0.0
        # a flat series must still notice a change: floors relative to its level
        tiny = 1e-6 * (abs(float(np.median(v_all))) + 1e-3)
        floor = max(0.02 * level_scale, 0.2 * step_scale, tiny)
        dfloor = max(0.05 * step_scale, tiny)
        raw = np.concatenate([self._raw(v, 0, floor, dfloor) for _, v in series])
        refs = [reference(raw[:, j]) for j in range(3)]
        return {"floor": floor, "dfloor": dfloor, "refs": refs}

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        raw = self._raw(v, start, params["floor"], params["dfloor"])
        s = np.zeros(raw.shape[0])
        for j, ref in enumerate(params["refs"]):
            s = np.maximum(s, calibrate(raw[:, j], ref))
        return s
