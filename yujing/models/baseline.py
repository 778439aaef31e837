"""Robust seasonal baseline: median and MAD per hour of week, per station-metric.

Training builds, per key, a table of 168 slots (day of week × hour of day, in the
model's local time) with the median and robust scale of the values seen in each.
A slot with fewer than ``min_count`` readings falls back to its hour of day over
all days, and that to the key's overall median, so a short history still scores.
A reading's score depends only on its own time and value, so streaming needs no
state at all; the vectorised lookup makes it the cheapest detector, and
:meth:`SeasonalBaseline.score_many` scores a mixed envelope of many stations in one
lookup (the same numbers as scoring each station on its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from yujing.models.base import (
    Detector,
    FeatureSchema,
    ModelError,
    SeriesState,
    calibrate,
    calibrate_rows,
    reference,
    robust_scale,
)

HOUR_MS = 3_600_000
SLOTS = 168


class SeasonalBaseline(Detector):
    kind = "baseline"
    schema = FeatureSchema("baseline", 1, ("hour_of_week", "hour_of_day", "value"))
    history = 0

    def __init__(self, seed: int = 0, utc_offset_hours: float = 8.0, min_count: int = 4
                 ) -> None:
        super().__init__(seed)
        self.utc_offset_hours = float(utc_offset_hours)
        self.min_count = int(min_count)

    def hyper(self) -> dict[str, Any]:
        return {"seed": self.seed, "utc_offset_hours": self.utc_offset_hours,
                "min_count": self.min_count}

    def _slots(self, ts: np.ndarray) -> np.ndarray:
        hours = (ts + int(self.utc_offset_hours * HOUR_MS)) // HOUR_MS
        dow = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        return (dow * 24 + hours % 24).astype(np.int64)

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        ts = np.concatenate([t for t, _ in series])
        v = np.concatenate([x for _, x in series])
        slot = self._slots(ts)
        overall_med = float(np.median(v))
        overall_scale = robust_scale(v)
        tiny = 1e-6 * (abs(overall_med) + 1e-3)
        floor = max(0.05 * overall_scale, tiny)
        med = np.full(SLOTS, overall_med)
        scale = np.full(SLOTS, max(overall_scale, floor))
        # hour of day first, then hour of week where there is enough data
        for level, key in ((24, slot % 24), (SLOTS, slot)):
            order = np.argsort(key, kind="stable")
            k, vals = key[order], v[order]
            bounds = np.flatnonzero(np.diff(k)) + 1
            for part_k, part_v in zip(np.split(k, bounds), np.split(vals, bounds)):
                if part_v.size < self.min_count:
                    continue
                m, s = float(np.median(part_v)), max(robust_scale(part_v), floor)
                idx = np.arange(int(part_k[0]), SLOTS, 24) if level == 24 else [int(part_k[0])]
                med[idx], scale[idx] = m, s
        z = np.abs(v - med[slot]) / scale[slot]
        return {"median": med, "scale": scale, "ref": reference(z)}

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        slot = self._slots(ts[start:])
        z = np.abs(v[start:] - params["median"][slot]) / params["scale"][slot]
        return calibrate(z, params["ref"])

    def score_many(self, states: Sequence[SeriesState], ts: np.ndarray, values: np.ndarray,
                   bounds: np.ndarray) -> np.ndarray:
        """:meth:`Detector.score_many` in one table lookup over all series."""
        if not self.params:
            raise ModelError(f"{self.kind}: score() before fit(): train or load the model first")
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        lens = np.diff(np.asarray(bounds, dtype=np.int64))
        keys: dict[str, int] = {}
        seg_key = np.fromiter((keys.setdefault(s.key, len(keys)) for s in states), np.int64,
                              len(states))
        params = [self.params[key] for key in keys]
        med = np.stack([p["median"] for p in params])
        scale = np.stack([p["scale"] for p in params])
        ref = np.array([p["ref"] for p in params], dtype=np.float64)
        key = np.repeat(seg_key, lens)
        slot = self._slots(ts)
        z = np.abs(values - med[key, slot]) / scale[key, slot]
        out = calibrate_rows(z, ref[key])
        out[~np.isfinite(values)] = 0.0  # a missing value is no evidence
        return out
