"""Level and spread shift: the median and spread of the last readings against those before.

Why (bench/README.md, round "nab5"): on NAB, most windows that the ensemble misses are
sustained changes that are *smaller per reading* than an earlier spike of the same file:
a count series whose level doubles for hours (Twitter volumes), a metric that drops to
zero and stays there (a stuck agent, a disk that stops writing), a CPU that settles at a
new level with much less noise, a traffic speed that sags for a few hours. The spike
detector and the seasonal baseline score each reading, so an earlier single outlier sets
a record that a later, milder but longer change never beats; the record filter
(scoring.RecordFilter) then keeps the change quiet. NAB's "windowed Gaussian" and
"relative entropy" baselines compare a recent window with the past for this reason.

This detector compares windows by robust statistics only, so a lone spike barely moves
it and its own records are set by earlier *shifts*, not by outliers:

1. For reading i the *window* is the ``window`` readings ending at i and the
   *reference* the ``reference`` readings before the window (shorter at a series'
   start: what there is, but at least ``window`` readings; before that the score is 0).
2. Level: ``|median(window) - median(reference)| / s``, with ``s`` the reference's
   robust scale (base.robust_scale: 1.4826 MAD, or the mean absolute deviation when
   more than half the values tie), never below ``floor`` (a share of the training
   series' robust scale: a flat reference would make any wobble infinite).
3. Spread: ``|log2((s_w + f) / (s + f))|`` with ``s_w`` the window's robust scale and
   ``f`` the same floor: noise that grows or a series that goes flat.
4. Each part is divided by its own 99th percentile in training (base.reference); the
   statistic is the larger of the two, calibrated with reference 1 (base.calibrate).

The score of a reading reads itself and the ``window + reference - 1`` readings before
it, so streaming equals one pass (history is bounded). The medians are taken over a
sliding view of the series in blocks of rows, with no per-reading Python loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from yujing.models.base import Detector, FeatureSchema, calibrate, reference, robust_scale
from yujing.models.window_median import nan_median

BLOCK = 2048  # rows per block of the sliding views (bounds the memory to BLOCK × reference)


def row_scale(x: np.ndarray, med: np.ndarray) -> np.ndarray:
    """Row-wise :func:`base.robust_scale`: 1.4826 · MAD about ``med``, or 1.2533 · the mean
    absolute deviation when the MAD is 0 (more than half the values tie)."""
    dev = np.abs(x - med[:, None])
    mad = 1.4826 * nan_median(dev)
    fin = np.isfinite(dev)
    mean_dev = 1.2533 * np.where(fin, dev, 0.0).sum(axis=1) / np.maximum(fin.sum(axis=1), 1)
    return np.where(mad > 0, mad, mean_dev)


def shift_parts(v: np.ndarray, start: int, window: int, ref: int,
                floor: float) -> tuple[np.ndarray, np.ndarray]:
    """(level, spread) of readings ``start..`` of ``v`` (module docstring, steps 1 to 3);
    0 where a reading's reference is shorter than the window."""
    n = v.size
    m = n - start
    level, spread = np.zeros(m), np.zeros(m)
    if m <= 0:
        return level, spread
    span = window + ref
    pad = np.concatenate((np.full(span - 1, np.nan), np.asarray(v, dtype=np.float64)))
    views = sliding_window_view(pad, span)  # row j: readings j - span + 1 .. j of v
    with np.errstate(invalid="ignore", divide="ignore"):
        for a in range(start, n, BLOCK):
            b = min(a + BLOCK, n)
            rows = views[a:b]
            r, w = rows[:, :ref], rows[:, ref:]
            mr, mw = nan_median(r), nan_median(w)
            sr = np.maximum(row_scale(r, mr), floor)
            sw = row_scale(w, mw)
            lv = np.abs(mw - mr) / sr
            sp = np.abs(np.log2((sw + floor) / (sr + floor)))
            # a reference shorter than the window is too short to judge by (a series'
            # start: one reading's "scale" made the first rows score 1 and mask the next
            # ``memory`` rows of the record filter)
            ok = (np.isfinite(r).sum(axis=1) >= window) & np.isfinite(lv) & np.isfinite(sp)
            level[a - start:b - start] = np.where(ok, lv, 0.0)
            spread[a - start:b - start] = np.where(ok, sp, 0.0)
    return level, spread


class ShiftDetector(Detector):
    kind = "shift"
    schema = FeatureSchema("shift", 1, ("level_z", "spread_log2"))

    def __init__(self, seed: int = 0, window: int = 24, reference: int = 500,
                 floor: float = 0.05) -> None:
        super().__init__(seed)
        if window < 2 or reference < 2 or not floor > 0:
            raise ValueError("shift: window and reference must be >= 2 and floor > 0")
        self.window = int(window)
        self.reference = int(reference)
        self.floor = float(floor)
        self.history = self.window + self.reference - 1

    def hyper(self) -> dict[str, Any]:
        return {"seed": self.seed, "window": self.window, "reference": self.reference,
                "floor": self.floor}

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        v_all = np.concatenate([v for _, v in series])
        scale = robust_scale(v_all)
        floor = self.floor * (scale if scale > 0 else max(float(np.ptp(v_all)), 1.0))
        parts = [shift_parts(v, 0, self.window, self.reference, floor) for _, v in series]
        level = np.concatenate([p[0] for p in parts])
        spread = np.concatenate([p[1] for p in parts])
        return {"floor": float(floor), "ref_level": reference(level, floor=1.0),
                "ref_spread": reference(spread, floor=0.5)}

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        level, spread = shift_parts(v, start, self.window, self.reference, params["floor"])
        z = np.maximum(level / params["ref_level"], spread / params["ref_spread"])
        return calibrate(z, 1.0)
