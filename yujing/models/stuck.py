"""A per-sensor stuck check: how long a sensor has repeated the same reading.

Why: a sensor stuck at one value stays inside the weather, so neither a station model
nor the neighbours see it until the weather moves away from it. What they cannot see is
that the value no longer changes at all. The statistic is, per station and metric, the
number of consecutive readings equal to the current one (1: it changed), divided by its
99th percentile on training (``reference``): a pressure read to whole hPa repeats for
hours on a calm day, a temperature read to 0.1 °C almost never, so each sensor is judged
against its own habit. A row's statistic is the largest over its metrics. The alarm
threshold is set with the other detectors (holdoff.py), never on labels.

Causal: a row's run length depends on that reading and the ones before it. A missing
reading neither breaks nor extends a run (it has no statistic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from yujing.models.base import ModelError, reference


def run_lengths(v: np.ndarray) -> np.ndarray:
    """Per row and column, the number of consecutive finite readings equal to this one,
    ending here (missing readings skipped); NaN where the reading is missing."""
    v = np.asarray(v, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    for j in range(v.shape[1]):
        rows = np.flatnonzero(np.isfinite(v[:, j]))
        if rows.size == 0:
            continue
        x = v[rows, j]
        changed = np.concatenate(([True], x[1:] != x[:-1]))
        start = np.maximum.accumulate(np.where(changed, np.arange(x.size), 0))
        out[rows, j] = np.arange(x.size) - start + 1
    return out


class StuckCheck:
    """Fitted per station and metric reference run lengths; scores aligned group rows."""

    def __init__(self, metrics: Sequence[str]) -> None:
        if not metrics:
            raise ModelError("stuck: name the metrics to check")
        self.metrics = [str(m) for m in metrics]
        self.ref: dict[str, np.ndarray] = {}

    def fit(self, values: Mapping[str, np.ndarray]) -> StuckCheck:
        """``values[metric]``: rows × stations of normal history, NaN = missing."""
        for m in self.metrics:
            runs = run_lengths(values[m])
            self.ref[m] = np.array([reference(runs[:, i], floor=2.0) for i in range(runs.shape[1])])
        return self

    def statistic(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Rows × stations: the largest run length ÷ reference over the metrics (NaN: no
        reading of any metric)."""
        if not self.ref:
            raise ModelError("stuck: statistic before fit: fit on normal history first")
        out = None
        for m in self.metrics:
            s = run_lengths(values[m]) / self.ref[m]
            out = s if out is None else np.fmax(out, s)
        return out
