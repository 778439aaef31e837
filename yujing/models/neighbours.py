"""Neighbours: each sensor predicted from the same sensor at the other stations of a group.

Why: a station's own sensors are loosely coupled (dew point from temperature depends on
the air mass), so a single-station model sees a step or a drift only at its onset and
then loses it in the weather. The same sensor at nearby stations follows the same
weather: on the Beijing sites temperature, dew point and wind speed stay within about
one hourly 99th-percentile step of the mean of the other sites (docs/models.md), so a
fault keeps the residual off for as long as it lasts.

**Model (per station and metric, fitted on normal history only).**

- a Huber regression of the sensor on each other station's same sensor (robust to the
  odd bad reading in the history); the prediction is the median of the predictions of
  the neighbours present at that time (a missing neighbour is left out; none present, or
  the sensor itself missing: no score, never an alarm); a median, so that a fault at one
  station does not move its neighbours' predictions; and at each row the station
  furthest off predicts the others no more (a median of three still moves by up to a
  MAD when one of them is off);
- the residual standardised by its median and 1.4826 · MAD, less its local level (the
  median of its previous ``BASELINE_ROWS`` rows, 14 days) and divided by the MAD of
  that: ``z``. A lasting change of the sites' relation (a sensor moved, the seasons) is
  absorbed within a week, a fault of up to three days is not;
- four views of ``z``, each divided by its training 99th percentile (of the absolute
  value): ``z`` itself (a spike), an EWMA of ``z`` (a step of one to two MADs held for
  hours accumulates), and a two-sided CUSUM of ``z`` with allowance ``CUSUM_K`` (a
  drift), and the median of its last ``NOISE_ROWS`` absolute steps (a sensor gone
  noisy: its readings stay near the truth, its steps do not). The EWMA span is chosen
  per metric among ``SPANS[1:]`` on training data only:
  the span whose calibrated threshold, in units of a sustained shift of ``z``, is
  smallest (an EWMA of a held shift converges to the shift), preferring the shortest
  span within ``SPAN_TIE`` of it (a shorter span alarms sooner). Labels are never read;
- the EWMA and the CUSUM count only as far as a fast EWMA (span ``SPANS[0]``) agrees in
  sign and size: the shift has lasted *and is still there*, so a fault's end is not
  alarmed for a day and a slow change of the sites' relation does not pile up in the
  CUSUM (docs/models.md "Neighbours": the training-only check that showed both);
- the statistic of a station and metric is the largest of the four views.

**Calibration (split conformal, like alarm.py).** The training range is split in time:
the regressions, scales and view references come from the first ``split`` share, the
rest is scored in streaming order (EWMA and CUSUM warmed on the first part) and gives
each station and metric its threshold, the conformal quantile at Šidák's share of the
target rate for the metrics named (those left out below included: a little
conservative). The calibration part is read in blocks of ``BLOCK_ROWS`` (30 days): a
block whose neighbour residual is more than ``STABLE_RATIO`` times as wide (99th
percentile of |z|) as in the fitted part is left out for that station and metric (a
fault of the training data itself, e.g. the Beijing pressure of 2014-11 to 2015-02; its
threshold would be set by that fault): ``calibration_rows_left_out`` counts them. A
station and metric with fewer than ``MIN_ROWS`` calibration rows left is not scored:
``dropped`` lists them. ``screen="metric"`` (the default) reads the calibration part as
one block, so such a metric is left out whole; ``screen="blocks"`` keeps it, calibrated
on the blocks left, which may not cover the seasons (docs/models.md: on Beijing the
pressure then alarms above its rate).

**Rows.** One row per station and timestamp of the group's aligned readings (the caller
aligns them: ``values[metric]`` is rows × stations with NaN for a missing reading). The
row's score is ``calibrate(max over metrics of statistic / threshold)``: 0.5 at the
threshold, so ``alarm`` is ``score > 0.5`` and the row alarms when any metric does.

**Streaming.** The score of a row depends on that row and on the state
(:class:`NeighbourState`: EWMA, CUSUM and the last ``BASELINE_ROWS`` residuals), so
scoring in chunks gives the same numbers as at once. The
stations of a group must be scored together (see docs/models.md "Neighbours" for what
running this in the worker needs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from yujing.models import sorted_windows
from yujing.models.alarm import conformal_threshold, sidak
from yujing.models.base import ModelError, calibrate, huber_line, reference, robust_scale
from yujing.models.neighbour_residual import residual_rows
from yujing.models.sorted_windows import SortedWindows
from yujing.models.window_median import level_and_noise

SPANS = (3, 6, 12, 24)  # EWMA spans (rows): the first is the "still there" check, the rest compared
SPAN_TIE = 0.1  # a span within 10 % of the best threshold counts as as good
CUSUM_K = 1.0  # CUSUM allowance in MADs: half a held shift of 2 MADs (docs/models.md "Neighbours")
STABLE_RATIO = 3.0  # calibration p99 / fitted p99 of |z| above this: the metric is left out
FIT_ROWS = 4000  # a line of two variables needs no more rows than this (evenly spaced)
MIN_ROWS = 200  # rows with the sensor and a neighbour present, to fit a station and metric
VIEWS = ("z", "ewma", "cusum", "noise")
BASELINE_ROWS = 336  # 14 days of hourly rows: the local level of the residual (a median)
BASELINE_MIN = 24  # rows of history before the local level is used (before: the fitted one)
BLOCK_ROWS = 720  # screen="blocks": calibration screened in blocks of 30 days of hourly rows
SCREENS = ("metric", "blocks")  # calibration screened as one block, or in BLOCK_ROWS blocks
NOISE_ROWS = 6  # the noise view: median of the last six |steps| of the residual
FEW_ROWS = 48  # rows up to which a call without kept windows takes them row by row


@dataclass
class NeighbourState:
    """Streaming state: per metric, EWMA (per span) and CUSUM (up, down) per station."""

    ewma: dict[str, np.ndarray]  # metric → spans × stations
    up: dict[str, np.ndarray]  # metric → stations
    down: dict[str, np.ndarray]
    past: dict[str, np.ndarray]  # metric → the last BASELINE_ROWS rows × stations of raw z
    level_windows: SortedWindows | None = field(default=None, metadata={"transient": True})


class NeighbourDetector:
    """Fit on a group of stations' aligned readings, score and alarm per station row."""

    kind = "neighbours"

    def __init__(self, stations: Sequence[str], metrics: Sequence[str], spans: Sequence[int] = SPANS,
                 screen: str = "metric") -> None:
        if len(stations) < 2:
            raise ModelError(f"neighbours: a group needs two or more stations, got {list(stations)}")
        if not metrics:
            raise ModelError("neighbours: name the metrics to model (e.g. TEMP, DEWP, WSPM)")
        self.stations, self.metrics = [str(s) for s in stations], [str(m) for m in metrics]
        self.spans = tuple(int(s) for s in spans)
        if screen not in SCREENS:
            raise ModelError(f"neighbours: screen {screen!r}: one of {', '.join(SCREENS)}")
        self.screen = screen
        self.params: dict[str, dict[str, np.ndarray]] = {}
        self.meta: dict[str, Any] = {}

    # -- the residual ---------------------------------------------------------------------

    def residual_z(self, metric: str, v: np.ndarray) -> np.ndarray:
        """Standardised residual (rows × stations) of one metric; NaN where the sensor or
        every neighbour is missing. The prediction is the median of the neighbours' (a
        faulty neighbour moves a median of three not at all, a mean by a third of its fault)."""
        p = self.params[metric]
        return residual_rows(v, p["slope"][None], p["intercept"][None], p["center"], p["scale"])

    def residual_all(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """:meth:`residual_z` of every metric, side by side (rows × metrics·stations), in one
        call (each row of each metric a row of :func:`residual_rows`, with its parameters)."""
        v = np.stack([np.asarray(values[m], dtype=np.float64) for m in self.metrics], axis=1)
        n, m, k = v.shape
        if getattr(self, "_stacked_for", None) is not self.params:  # stacked once per fit
            self._stacked = [np.stack([self.params[x][name] for x in self.metrics])
                             for name in ("slope", "intercept", "center", "scale")]
            self._stacked_for = self.params  # held, so ``is`` cannot match a reused id
        return residual_rows(v.reshape(n * m, k), *self._stacked,
                             np.tile(np.arange(m), n)).reshape(n, m * k)

    def local_z(self, metric: str, v: np.ndarray, state: NeighbourState) -> np.ndarray:
        """The residual less its local level, the median of its previous ``BASELINE_ROWS``
        rows, in local MADs; ``state.past`` is advanced. Why: the sites' relation moves
        slowly (seasons, a sensor replaced or moved: at the Beijing sites the pressure
        offsets changed by about 1 hPa in 2015-01, ten MADs), and a fault held for three
        days moves a 14-day median not at all. Until ``BASELINE_MIN`` rows of history
        exist the level is the fitted one (0)."""
        z, _, state.past[metric], _ = self._local(self.residual_z(metric, v), state.past[metric],
                                                  self.params[metric]["local_scale"])
        return z

    @staticmethod
    def _local(raw: np.ndarray, past: np.ndarray, scale: np.ndarray,
               windows: SortedWindows | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, SortedWindows | None]:
        """(:meth:`local_z` of the residual ``raw``, the noise view, the new past, the
        level's sorted windows: moved on; None after pandas' path, taken by a call of over
        ``FEW_ROWS`` rows without windows, as training's; the numbers agree): the noise
        view is the median of the residual's last ``NOISE_ROWS`` absolute steps, in local
        MADs. Why: a sensor gone noisy moves about its truth, so most single readings stay
        inside the weather, but every step of its residual is large; a median of six steps
        ignores the one or two jumps at a spike's or a step's ends. Columns are independent:
        the worker passes every metric's stations side by side in one call."""
        both = np.vstack([past, raw])
        if raw.shape[0] <= FEW_ROWS or windows is not None:  # the worker, at any pass size
            level, steps, windows = level_and_noise(
                both, past.shape[0], (BASELINE_ROWS, BASELINE_MIN), (NOISE_ROWS, NOISE_ROWS // 2),
                windows)
        else:
            windows = None
            frame = pd.DataFrame(both)
            level = (frame.rolling(BASELINE_ROWS, min_periods=BASELINE_MIN).median()
                     .shift(1).to_numpy()[past.shape[0]:])
            steps = (frame.diff().abs().rolling(NOISE_ROWS, min_periods=NOISE_ROWS // 2)
                     .median().to_numpy()[past.shape[0]:])
        noise = np.where(np.isfinite(raw), steps / scale, np.nan)
        return (raw - np.nan_to_num(level, nan=0.0)) / scale, noise, both[-BASELINE_ROWS:], windows

    def _fit_lines(self, v: np.ndarray) -> dict[str, np.ndarray]:
        k = v.shape[1]
        slope, intercept = np.zeros((k, k)), np.zeros((k, k))
        for i in range(k):
            for j in range(k):
                ok = np.isfinite(v[:, i]) & np.isfinite(v[:, j])
                if i == j or ok.sum() < MIN_ROWS:
                    slope[i, j] = intercept[i, j] = np.nan  # this neighbour never predicts i
                    continue
                rows = np.flatnonzero(ok)[:: max(1, int(ok.sum()) // FIT_ROWS)]  # even in time
                slope[i, j], intercept[i, j] = huber_line(v[rows, j], v[rows, i])
        return {"slope": slope, "intercept": intercept}

    # -- fitting and calibration ----------------------------------------------------------

    def fit(self, ts: np.ndarray, values: Mapping[str, np.ndarray], far: float,
            split: float = 0.7) -> NeighbourDetector:
        """Fit on the first ``split`` of the time range, calibrate alarms for ``far`` (per
        station row) on the rest. ``values[metric]``: rows × stations, NaN = missing."""
        if not 0 < far < 1:
            raise ModelError(f"neighbours: --far {far}: a false-alarm rate lies between 0 and 1")
        ts = np.asarray(ts, dtype=np.int64)
        if ts.size < 2 * MIN_ROWS:
            raise ModelError(f"neighbours: only {ts.size} rows to train on: give more history")
        cut = int(ts.min()) + int(split * (int(ts.max()) - int(ts.min())))
        first = ts < cut
        self.params, self._stacked_for = {}, None
        for m in self.metrics:
            v = np.asarray(values[m], dtype=np.float64)
            p = self._fit_lines(v[first])
            self.params[m] = dict(p, center=np.zeros(len(self.stations)), scale=np.ones(len(self.stations)))
            r = self.residual_z(m, v[first])
            center = np.nanmedian(r, axis=0)
            scale = np.array([robust_scale(r[:, i] - center[i]) or 1.0 for i in range(r.shape[1])])
            self.params[m].update(center=center, scale=scale, local_scale=np.ones(len(self.stations)))
            state = self.new_state()
            loc = self.local_z(m, v[first], state)
            self.params[m]["local_scale"] = np.array([robust_scale(loc[:, i]) or 1.0
                                                      for i in range(loc.shape[1])])
        self._fit_views(ts, values, first, far)
        return self

    def _fit_views(self, ts: np.ndarray, values: Mapping[str, np.ndarray], first: np.ndarray,
                   far: float) -> None:
        """View references on the fitted part; span choice, dropped metrics and thresholds
        on the calibration part."""
        k = len(self.stations)
        raw = self._views_all(values, self.new_state(), range(len(self.spans)))
        alpha = sidak(far, len(self.metrics))
        dropped, chosen, short, screened = [], {}, [], {}
        for m, (z, ewmas, cusum, noise) in raw.items():
            p = self.params[m]
            p["ref_noise"] = np.array([reference(noise[first, i], floor=1e-9) for i in range(k)])
            p["ref_z"] = np.array([reference(np.abs(z[first, i]), floor=1e-9) for i in range(k)])
            both = np.fmax(cusum[0], cusum[1])
            p["ref_cusum"] = np.array([reference(both[first, i], floor=1e-9) for i in range(k)])
            p["ref_fast"] = np.array([reference(np.abs(ewmas[0][first, i]), floor=1e-9)
                                      for i in range(k)])
            cal_rows = self._screen(z, first, p["ref_z"],
                                    BLOCK_ROWS if self.screen == "blocks" else len(z))
            for i, s in enumerate(self.stations):
                left = int((~first).sum() - cal_rows[:, i].sum())
                if left:
                    screened[f"{s}/{m}"] = left
            p["use"] = cal_rows.sum(axis=0) >= MIN_ROWS
            dropped += [f"{s}/{m}" for s, ok in zip(self.stations, p["use"]) if not ok]
            # span: the smallest calibrated threshold of |EWMA| (a held shift of z, in MADs)
            thr = np.array([np.median([conformal_threshold(np.abs(e[cal_rows[:, i], i]), alpha)[0]
                                       for i in range(k)]) for e in ewmas[1:]])
            best = 1 + int(np.flatnonzero(thr <= (1 + SPAN_TIE) * thr.min())[0])
            chosen[m] = self.spans[best]
            p["span_index"] = np.array(best)
            p["ref_ewma"] = np.array([reference(np.abs(ewmas[best][first, i]), floor=1e-9)
                                      for i in range(k)])
            stat = self._statistic(m, z, ewmas, cusum, noise)
            cal = [conformal_threshold(stat[cal_rows[:, i], i], alpha) for i in range(k)]
            # too few calibration rows for the rate: no threshold that keeps it, so no alarm
            p["threshold"] = np.array([t if enough else np.inf for t, enough in cal])
            short += [f"{s}/{m}" for s, (_, enough) in zip(self.stations, cal) if not enough]
        self.meta = {"kind": self.kind, "far": far, "per_metric_far": alpha, "spans": chosen,
                     "dropped": dropped, "too_few_calibration_rows": short,
                     "calibration_rows_left_out": screened,
                     "stations": self.stations, "metrics": self.metrics,
                     "calibration_from_ms": int(ts[~first].min()) if (~first).any() else None}

    @staticmethod
    def _screen(z: np.ndarray, first: np.ndarray, ref_z: np.ndarray, block_rows: int
                ) -> np.ndarray:
        """Calibration rows to keep (rows × stations): the calibration part in blocks of
        ``block_rows`` (the whole part: ``screen="metric"``); a block whose 99th percentile
        of |z| is more than ``STABLE_RATIO`` times the fitted part's is left out for that
        station (a fault of the training data itself, e.g. the Beijing pressure of 2014-11
        to 2015-02, read to whole hPa and apart by 10 hPa between sites: it would set the
        threshold). Labels are never read."""
        keep = np.zeros(z.shape, dtype=bool)
        rows = np.flatnonzero(~first)
        for lo in range(0, rows.size, block_rows):
            block = rows[lo:lo + block_rows]
            for i in range(z.shape[1]):
                wide = reference(np.abs(z[block, i]), floor=1e-9) > STABLE_RATIO * ref_z[i]
                keep[block, i] = not wide
        return keep & np.isfinite(z)

    # -- scoring --------------------------------------------------------------------------

    def new_state(self) -> NeighbourState:
        k, s = len(self.stations), len(self.spans)
        return NeighbourState({m: np.zeros((s, k)) for m in self.metrics},
                              {m: np.zeros(k) for m in self.metrics},
                              {m: np.zeros(k) for m in self.metrics},
                              {m: np.empty((0, k)) for m in self.metrics})

    def _views_all(self, values: Mapping[str, np.ndarray], state: NeighbourState,
                   spans: Sequence[int] | range) -> dict[str, tuple]:
        """metric → (z, [EWMA of z per span index], CUSUM, noise), rows × stations; ``state``
        advanced. The metrics' stations go side by side through the local level, the EWMAs
        and the CUSUM (one set of array operations per call, not one per metric: the worker
        scores a few rows at a time, where the number of operations is the cost)."""
        ms, k = self.metrics, len(self.stations)
        raw = self.residual_all(values)
        scale = np.concatenate([np.broadcast_to(self.params[m]["local_scale"], (k,)) for m in ms])
        kept = sorted_windows.kept(state.level_windows, [state.past[m] for m in ms])
        z, noise, past, windows = self._local(raw, np.hstack([state.past[m] for m in ms]), scale,
                                              kept)
        ewma = np.concatenate([state.ewma[m] for m in ms], axis=1)
        ewmas = self._ewmas(z, ewma, spans)
        up = np.concatenate([state.up[m] for m in ms])
        down = np.concatenate([state.down[m] for m in ms])
        hi, lo = self._cusum(z, up, down)
        out = {}
        for j, m in enumerate(ms):
            c = slice(j * k, (j + 1) * k)
            state.past[m], state.ewma[m] = past[:, c].copy(), ewma[:, c].copy()
            state.up[m], state.down[m] = up[c].copy(), down[c].copy()
            out[m] = (z[:, c], [e[:, c] for e in ewmas], (hi[:, c], lo[:, c]), noise[:, c])
        state.level_windows = sorted_windows.owned(windows, [state.past[m] for m in ms])
        return out

    def _ewmas(self, z: np.ndarray, state: np.ndarray, indices: Sequence[int] | range
               ) -> list[np.ndarray]:
        """Causal EWMAs of ``z``, one per span index in ``indices`` (all in one pass over the
        rows: the worker scores a few rows at a time, and the per-row step is the cost); a
        missing ``z`` leaves an EWMA as it was (and its row has no score). ``state[i]`` is
        advanced in place."""
        idx = np.asarray(list(indices), dtype=np.int64)
        a = (2.0 / (np.asarray(self.spans, dtype=np.float64)[idx] + 1.0))[:, None]
        fin = np.isfinite(z)
        zz = np.where(fin, z, 0.0)
        e = state[idx]
        out = np.empty((idx.size, *z.shape))
        for t in range(z.shape[0]):
            e = np.where(fin[t], (1 - a) * e + a * zz[t], e)
            out[:, t] = e
        state[idx] = e
        return [np.where(fin, out[i], np.nan) for i in range(idx.size)]

    @staticmethod
    def _cusum(z: np.ndarray, up: np.ndarray, down: np.ndarray) -> np.ndarray:
        """Two-sided CUSUM of ``z`` with allowance ``CUSUM_K``: (up, down) per row."""
        hi, lo = np.empty_like(z), np.empty_like(z)
        for t in range(z.shape[0]):
            ok = np.isfinite(z[t])
            zt = np.where(ok, z[t], 0.0)
            up[:] = np.where(ok, np.maximum(0.0, up + zt - CUSUM_K), up)
            down[:] = np.where(ok, np.maximum(0.0, down - zt - CUSUM_K), down)
            hi[t], lo[t] = up, down
        return hi, lo

    def _statistic(self, metric: str, z: np.ndarray, ewmas: list[np.ndarray], cusum: tuple,
                   noise: np.ndarray) -> np.ndarray:
        """The largest view: ``|z|``, then the slow EWMA and the CUSUM, each counted only as far
        as the fast EWMA (span ``spans[0]``) agrees in sign and size: a shift that has lasted
        *and is still there*. Without that gate a held fault leaves the slow views high for a
        day after it ends (measured: the false alarms after each fault, docs/models.md)."""
        p = self.params[metric]
        fast = ewmas[0] / p["ref_fast"]
        slow = ewmas[int(p["span_index"])] / p["ref_ewma"]
        up, down = cusum[0] / p["ref_cusum"], cusum[1] / p["ref_cusum"]
        held = np.where(fast * slow > 0, np.minimum(np.abs(fast), np.abs(slow)), 0.0)
        drift = np.fmax(np.minimum(up, np.maximum(fast, 0.0)), np.minimum(down, np.maximum(-fast, 0.0)))
        out = np.fmax(np.fmax(np.abs(z) / p["ref_z"], held), drift)
        out = np.fmax(out, noise / p["ref_noise"])
        return np.where(np.isfinite(z), out, np.nan)

    def score(self, values: Mapping[str, np.ndarray], state: NeighbourState | None = None
              ) -> np.ndarray:
        """Row scores (rows × stations) in [0, 1], 0.5 at the alarm threshold; 0 where no
        metric has a score. ``state`` is advanced in place (None: from scratch)."""
        if not self.params or "threshold" not in self.params[self.metrics[0]]:
            raise ModelError("neighbours: score before fit: train the model first")
        state = self.new_state() if state is None else state
        worst = None
        for m, (z, ewmas, cusum, noise) in self._views_all(values, state,
                                                           range(len(self.spans))).items():
            p = self.params[m]
            rel = self._statistic(m, z, ewmas, cusum, noise) / p["threshold"]
            rel = np.where(p["use"], rel, np.nan)
            worst = rel if worst is None else np.fmax(worst, rel)
        return calibrate(np.nan_to_num(worst, nan=0.0), 1.0)

    def explain(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """metric → its statistic ÷ threshold (rows × stations), from scratch: which sensor
        alarmed (> 1), for tables and tests."""
        out = {}
        for m, (z, ewmas, cusum, noise) in self._views_all(values, self.new_state(),
                                                           range(len(self.spans))).items():
            p = self.params[m]
            out[m] = self._statistic(m, z, ewmas, cusum, noise) / p["threshold"]
        return out

    @staticmethod
    def alarm(scores: np.ndarray) -> np.ndarray:
        """Alarm decisions: a score above 0.5 is a metric above its calibrated threshold."""
        return np.asarray(scores, dtype=np.float64) > 0.5
