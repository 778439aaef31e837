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

:meth:`SpikeDetector.score_many` scores the readings of many stations in one numpy
pass (the worker's mixed envelopes): the envelope sorted by station and time is laid
out flat behind each station's tail, the windows of every reading are gathered at
once and the CUSUM runs row-wise over a stations × span layout. It performs the same
arithmetic on the same values as :meth:`score` per station, so the scores are
identical (``tests/unit/test_model_detectors.py`` asserts equality on random data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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
from yujing.models.features import past_median_scale, robust_rows, rolling_min

CLIP = 8.0  # residuals beyond this many scales count as this much in the CUSUM


@dataclass
class SpikeState(SeriesState):
    """A series' tail plus the clipped level residuals of its newest ``cusum_span``
    readings (a cache: a state without them recomputes them from the tail)."""

    r: np.ndarray = field(default_factory=lambda: np.empty(0))

    def copy(self) -> SpikeState:
        return SpikeState(self.station, self.key, self.ts.copy(), self.v.copy(), self.r.copy())


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

    def new_state(self, station: str = "*") -> SpikeState:
        base = super().new_state(station)
        return SpikeState(base.station, base.key)

    def _raw(self, v: np.ndarray, start: int, floor: float, dfloor: float,
             past_r: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n - start, 3) robust statistics (NaN where the past is too short), and the
        clipped level residuals the CUSUM summed (from ``cusum_span`` readings before
        ``start``). ``past_r``: those residuals of the ``cusum_span`` readings before
        ``start``, as an earlier call returned them (the same numbers, not recomputed)."""
        n = v.size
        c0 = max(start - self.cusum_span, 0)  # CUSUM needs residuals this far back
        if past_r is not None and past_r.size == start - c0 == self.cusum_span:
            med, scale = past_median_scale(v, start, self.window, self.min_periods)
            resid = (v[start:] - med) / np.maximum(scale, floor)
            r = np.concatenate((past_r, np.nan_to_num(np.clip(resid, -CLIP, CLIP), nan=0.0)))
            level = np.abs(resid)
        else:
            med, scale = past_median_scale(v, c0, self.window, self.min_periods)
            resid = (v[c0:] - med) / np.maximum(scale, floor)
            r = np.nan_to_num(np.clip(resid, -CLIP, CLIP), nan=0.0)
            level = np.abs(resid[start - c0:])
        out = np.full((n - start, 3), np.nan)
        out[:, 0] = level
        if n >= 2:
            dv = np.diff(v)  # dv[i - 1] = v[i] - v[i - 1]
            ds = max(start - 1, 0)
            dmed, dscale = past_median_scale(dv, ds, self.window, self.min_periods)
            jump = np.abs(dv[ds:] - dmed) / np.maximum(dscale, dfloor)
            out[max(1 - start, 0):, 1] = jump[start - 1 - ds if start >= 1 else 0:]
        up = np.cumsum(r - self.drift)
        down = np.cumsum(-r - self.drift)
        # windowed CUSUM: S_i = C_i - min(C_{i-span}, ..., C_i), with C_{-1} = 0
        up_s = up - rolling_min(np.concatenate(([0.0], up)), self.cusum_span)[1:]
        down_s = down - rolling_min(np.concatenate(([0.0], down)), self.cusum_span)[1:]
        cus = np.maximum(up_s, down_s)[start - c0:]
        cus[np.isnan(out[:, 0])] = np.nan
        out[:, 2] = np.maximum(cus, 0.0)
        return out, r

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        v_all = np.concatenate([v for _, v in series])
        d_all = np.concatenate([np.diff(v) for _, v in series])
        level_scale = robust_scale(v_all)
        step_scale = robust_scale(d_all) if d_all.size else 0.0
        # a flat series must still notice a change: floors relative to its level
        tiny = 1e-6 * (abs(float(np.median(v_all))) + 1e-3)
        floor = max(0.02 * level_scale, 0.2 * step_scale, tiny)
        dfloor = max(0.05 * step_scale, tiny)
        raw = np.concatenate([self._raw(v, 0, floor, dfloor)[0] for _, v in series])
        refs = [reference(raw[:, j]) for j in range(3)]
        return {"floor": floor, "dfloor": dfloor, "refs": refs}

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        return self._calibrated(self._raw(v, start, params["floor"], params["dfloor"])[0],
                                params)

    def _score_state(self, state: SeriesState, ts: np.ndarray, v: np.ndarray,
                     start: int) -> np.ndarray:
        # reuse the residuals of the tail's newest readings rather than recompute them
        params = self.params[state.key]
        raw, r = self._raw(v, start, params["floor"], params["dfloor"],
                           getattr(state, "r", None))
        if isinstance(state, SpikeState):
            state.r = r[-self.cusum_span:].copy()
        return self._calibrated(raw, params)

    def _calibrated(self, raw: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        s = np.zeros(raw.shape[0])
        for j, ref in enumerate(params["refs"]):
            s = np.maximum(s, calibrate(raw[:, j], ref))
        return s

    def score_many(self, states: Sequence[SeriesState], ts: np.ndarray, values: np.ndarray,
                   bounds: np.ndarray) -> np.ndarray:
        """:meth:`Detector.score_many`, vectorised across series.

        Series whose state holds at least ``window + cusum_span`` readings and the
        residuals of the newest ``cusum_span`` of them, and whose new readings are all
        finite (the steady state of a worker), are scored together; the rest (a
        station's first readings, a missing value, a state from before a reload) go
        through :meth:`score`.
        """
        if not self.params:
            raise ModelError(f"{self.kind}: score() before fit(): train or load the model first")
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        bounds = np.asarray(bounds, dtype=np.int64)
        out = np.empty(ts.size)
        lens = np.diff(bounds)
        tails = np.fromiter((s.v.size for s in states), np.int64, len(states))
        span = self.cusum_span
        ok = (tails >= self.window + span) & (lens > 0) & np.fromiter(
            (getattr(s, "r", np.empty(0)).size == span for s in states), bool, len(states))
        bad = ~np.isfinite(values)
        if bad.any():
            ok[np.repeat(np.arange(len(states)), lens)[bad]] = False
        for k in np.flatnonzero(~ok & (lens > 0)):
            a, b = bounds[k], bounds[k + 1]
            out[a:b] = self.score(ts[a:b], values[a:b], states[k])
        fast = np.flatnonzero(ok)
        if fast.size:
            self._score_fast([states[k] for k in fast], ts, values, bounds[fast], lens[fast],
                             tails[fast], out)
        return out

    def _score_fast(self, states: list[SeriesState], ts: np.ndarray, values: np.ndarray,
                    first: np.ndarray, n: np.ndarray, tails: np.ndarray, out: np.ndarray
                    ) -> None:
        span, window = self.cusum_span, self.window
        k = len(states)  # every state holds its newest span residuals (score_many checks)
        # flat layout: [tail_0, new_0, tail_1, new_1, ...]
        v_parts: list[np.ndarray] = []
        t_parts: list[np.ndarray] = []
        for s, a, m in zip(states, first.tolist(), n.tolist()):
            v_parts += (s.v, values[a:a + m])
            t_parts += (s.ts, ts[a:a + m])
        flat_v = np.concatenate(v_parts)
        seg_len = tails + n
        seg_end = np.cumsum(seg_len)
        seg_start = seg_end - seg_len
        # positions of the new readings in the flat layout
        total = int(n.sum())
        ramp = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
        pos = np.repeat(seg_start + tails, n) + ramp
        row = np.repeat(np.arange(k), n)
        params = [self.params[s.key] for s in states]
        floor = np.array([p["floor"] for p in params])
        dfloor = np.array([p["dfloor"] for p in params])
        refs = np.array([p["refs"] for p in params], dtype=np.float64).reshape(k, 3)
        # level: robust z against the previous window
        med, scale = robust_rows(sliding_window_view(flat_v, window)[pos - window])
        # jump: the step against the previous window of steps
        dv = np.diff(flat_v)
        s, r = self.score_rows(flat_v[pos], (med, scale), dv[pos - 1],
                               sliding_window_view(dv, window)[pos - 1 - window],
                               np.stack([s.r for s in states]), row, ramp,
                               floor[row], dfloor[row], refs[row])
        # back to the input order: the k-th fast series' readings sit at first[k]...
        out[np.repeat(first, n) + ramp] = s
        flat_t = np.concatenate(t_parts)
        h = self.history
        for j, (st, a, b, m) in enumerate(zip(states, np.maximum(seg_end - h, seg_start).tolist(),
                                              seg_end.tolist(), n.tolist())):
            st.ts = flat_t[a:b].copy()
            st.v = flat_v[a:b].copy()
            st.r = r[j, m:m + span].copy()

    def score_rows(self, x: np.ndarray, level: tuple[np.ndarray, np.ndarray], step: np.ndarray,
                   steps: np.ndarray, past_r: np.ndarray, row: np.ndarray, q: np.ndarray,
                   floor: np.ndarray, dfloor: np.ndarray, refs: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Scores of readings ``x`` of several series given what their windows hold:
        ``level`` the median and scale of the ``window`` readings before each, ``step``
        its step from the previous reading and ``steps`` the ``window`` steps before
        that (one row per reading), ``past_r`` each series' newest ``cusum_span``
        residuals; ``row``/``q``: a reading's series and its place among the series' new
        readings; ``floor``, ``dfloor``, ``refs``: its key's parameters. Returns the
        scores and the (series, span + most new) residuals: series ``j``'s newest span
        are ``r[j, n_j:n_j + span]``. Shared by :meth:`score_many` and the ensemble,
        which takes the level statistics from the window IsolationForest reads too."""
        med, scale = level
        span = self.cusum_span
        resid = (x - med) / np.maximum(scale, floor)
        level_z = np.abs(resid)
        dmed, dscale = robust_rows(steps)
        jump = np.abs(step - dmed) / np.maximum(dscale, dfloor)
        # windowed CUSUM, row by row over [the tail's span residuals, the new ones]: the
        # cumulative sums start where score() starts them, so they are the same numbers
        r = np.zeros((past_r.shape[0], span + int(q.max()) + 1))
        r[:, :span] = past_r
        col = q + span
        r[row, col] = np.nan_to_num(np.clip(resid, -CLIP, CLIP), nan=0.0)
        up = np.cumsum(r - self.drift, axis=1)
        down = np.cumsum(-r - self.drift, axis=1)
        up_min = sliding_window_view(up, span + 1, axis=1).min(axis=2)
        down_min = sliding_window_view(down, span + 1, axis=1).min(axis=2)
        up_s = up[row, col] - up_min[row, q]
        down_s = down[row, col] - down_min[row, q]
        cus = np.maximum(np.maximum(up_s, down_s), 0.0)
        s = np.zeros(x.size)
        for j, raw in enumerate((level_z, jump, cus)):
            s = np.maximum(s, calibrate_rows(raw, refs[:, j]))
        return s, r
