"""Calibrated alarms: a score threshold for a target false-alarm rate, chosen on training data.

A score says how unusual a reading is; a duty officer needs a decision, and one whose
false-alarm rate is known before the first alarm. Split conformal calibration gives it
without labels:

1. the training range is split in time: the detector is fitted on the first part
   (``split``, default 70 %) and scores the last part in streaming order, as it would
   live (per-series states warmed on the first part);
2. the threshold is the conformal quantile of those held-out scores: with n scores and
   a per-series rate α, the ⌈(n + 1)(1 − α)⌉-th smallest. A new normal score exceeds it
   with probability at most α (exactly so for exchangeable scores; time series are
   not quite that, which is why the held-out part is the latest one);
3. α is corrected for the number of series a station alarms on (``series``, e.g. four
   per-metric models combined by "any sensor"): Šidák, α = 1 − (1 − far)^(1/series),
   so the station's rate stays at ``far``.

The saved model is the one fitted on the first part: the threshold belongs to it.
When the held-out part has too few scores for the rate (n < 1/α − 1) the threshold is 1
(no score exceeds it) and the metadata says so. Labels are never read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from yujing.models import make_detector
from yujing.models.base import Detector, ModelError
from yujing.models.station import StationDetector

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SPLIT = 0.7


def sidak(far: float, series: int) -> float:
    """Per-series false-alarm rate so that ``series`` independent ones alarm at ``far``."""
    return 1.0 - (1.0 - far) ** (1.0 / max(int(series), 1))


def conformal_threshold(scores: np.ndarray, alpha: float) -> tuple[float, bool]:
    """(threshold, enough): the split-conformal (1 − alpha) quantile of ``scores``; alarms
    are scores strictly above it. ``enough`` is False when there are too few scores."""
    s = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
    k = math.ceil((s.size + 1) * (1.0 - alpha))
    if k > s.size or s.size == 0:
        return 1.0, False
    return float(s[max(k, 1) - 1]), True


def held_out_scores(det: Detector, frame: pd.DataFrame, cut_ms: int) -> np.ndarray:
    """Scores of the rows at or after ``cut_ms``, each series scored from its start in
    streaming order (so the earlier rows warm its state, as in a worker)."""
    out = []
    if isinstance(det, StationDetector):
        for row_ts, scores in det.score_frame(frame).values():
            out.append(scores[row_ts >= cut_ms])
    else:
        sub = frame[frame["metric"] == det.metric]
        for station, g in sub.groupby("station", sort=True, observed=True):
            g = g.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last")
            ts = g["ts"].to_numpy(np.int64)
            scores = det.score(ts, g["value"].to_numpy(np.float64), det.new_state(str(station)))
            out.append(scores[ts >= cut_ms])
    return np.concatenate(out) if out else np.empty(0)


def fit_calibrated(frame: pd.DataFrame, kind: str, far: float, metric: str | None = None,
                   series: int = 1, split: float = DEFAULT_SPLIT, seed: int = 0,
                   hyper: dict | None = None, groups: Mapping[str, str] | None = None
                   ) -> Detector:
    """Fit ``kind`` on the first ``split`` of the time range, set its alarm threshold for
    ``far`` on the rest (see the module's docstring); the threshold is in ``meta['alarm']``."""
    if not 0 < far < 1:
        raise ModelError(f"--far {far}: a false-alarm rate lies between 0 and 1, e.g. 0.001")
    if not 0 < split < 1:
        raise ModelError(f"split {split}: the fitted share of training lies between 0 and 1")
    ts = frame["ts"].to_numpy(np.int64)
    if ts.size == 0:
        raise ModelError("no readings to train on")
    t0, t1 = int(ts.min()), int(ts.max())
    cut = t0 + int(split * (t1 - t0))
    det = make_detector(kind, seed=seed, **(hyper or {}))
    det.fit(frame[ts < cut], metric, groups)
    alpha = sidak(far, series)
    scores = held_out_scores(det, frame, cut)
    threshold, enough = conformal_threshold(scores, alpha)
    det.meta["alarm"] = alarm_meta(far, series, alpha, threshold, enough, scores, cut, split)
    return det


def alarm_meta(far: float, series: int, alpha: float, threshold: float, enough: bool,
               scores: np.ndarray, cut: int, split: float) -> dict[str, Any]:
    return {"far": far, "series": int(series), "per_series_far": alpha, "threshold": threshold,
            "method": "split conformal quantile, Sidak-corrected", "split": split,
            "calibration_from_ms": int(cut), "calibration_scores": int(scores.size),
            "enough_scores": bool(enough),
            "held_out_rate": float((scores > threshold).mean()) if scores.size else None}
