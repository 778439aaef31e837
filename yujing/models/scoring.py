"""What the rule engine and the worker call: score series and envelopes with a model.

- :func:`score_series` scores every reading of one sorted series using only the
  past (the same numbers streaming would give);
- :class:`Scorer` keeps one :class:`~yujing.models.base.SeriesState` per station and
  scores an envelope's readings of the model's metric: sorted by station and time and
  handed to the model's ``score_many`` in one call (one numpy pass for the baseline and
  spike detectors, the same scores as station by station);
- :class:`RecordFilter` (optional) turns scores into alarm-style scores: a reading keeps
  a score only when it is more unusual than every reading of its recent past, so one
  anomaly gives one alarm, not a run of them (what NAB-style evaluation rewards; rules
  with ``for:`` durations want the plain scores instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from yujing.models.base import Detector, SeriesState
from yujing.models.station_batch import ready, score_stations


def score_series(model: Detector, ts: np.ndarray, values: np.ndarray,
                 station: str | None = None, state: SeriesState | None = None) -> np.ndarray:
    """Scores in [0, 1] for a series sorted by time; reading i uses only readings <= i.

    ``station`` picks the station's (or its group's) parameters, the pooled ones when
    None or unknown. ``state`` (from ``model.new_state``) continues a stream; it is
    advanced in place. The score of a reading depends on at most ``model.history``
    readings before it, so a caller that keeps that many readings of a series can
    rescore any reading exactly.
    """
    ts = np.asarray(ts)
    if ts.size > 1 and np.any(np.diff(ts) < 0):
        raise ValueError("score_series: ts must be sorted ascending (one series, event time)")
    if state is None:
        state = model.new_state(station if station is not None else "*")
    return model.score(ts, values, state)


class Scorer:
    """Per-station streaming state of one model over envelopes of mixed readings.

    ``batch=True`` (the default) hands all stations of an envelope to the model's
    :meth:`~yujing.models.base.Detector.score_many` at once, which the baseline and
    spike detectors run as one numpy pass; ``batch=False`` scores station by station.
    Both give the same scores.
    """

    def __init__(self, model: Detector, batch: bool = True) -> None:
        self.model = model
        self.batch = batch
        self.states: dict[str, SeriesState] = {}

    def _state(self, name: str) -> SeriesState:
        state = self.states.get(name)
        if state is None:
            state = self.states[name] = self.model.new_state(name)
        return state

    def score_envelope(self, stations: Sequence[str], si: np.ndarray, metrics: Sequence[str],
                       mi: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Scores for the readings of the model's metric (NaN for other metrics).

        Columns are dictionary-encoded as in the worker's envelopes. Readings of a
        station older than or equal to its newest scored reading are scored against the
        current state without advancing it (replays change nothing). Of fresh readings
        of one station with the same timestamp, the last one is scored (and its score
        given to all of them).
        """
        ts = np.asarray(ts)
        si = np.asarray(si)
        out = np.full(ts.size, np.nan)
        if self.model.metric not in metrics:
            return out
        m = list(metrics).index(self.model.metric)
        sel = np.flatnonzero(np.asarray(mi) == m)
        if sel.size == 0:
            return out
        order = sel[np.lexsort((ts[sel], si[sel]))]  # by station, then time; stable
        st = si[order]
        bounds = np.concatenate(([0], np.flatnonzero(st[1:] != st[:-1]) + 1, [order.size]))
        states = [self._state(stations[int(c)]) for c in st[bounds[:-1]]]
        t = ts[order].astype(np.int64)
        v = np.asarray(values, dtype=np.float64)[order]
        if not self.batch:
            self._score_each(states, bounds, order, t, v, out)
        elif self.model.history == 0:  # no past used: nothing to protect
            out[order] = self.model.score_many(states, t, v, bounds)
        else:
            self._score_batch(states, bounds, order, t, v, out)
        return out

    def _score_batch(self, states: list[SeriesState], bounds: np.ndarray, order: np.ndarray,
                     t: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
        k = len(states)
        seg = np.repeat(np.arange(k), np.diff(bounds))
        newest = np.fromiter((s.ts[-1] if s.ts.size else np.iinfo(np.int64).min
                              for s in states), np.int64, k)
        fresh = t > newest[seg]
        if not fresh.all():  # replays: scored against a copy, before the state moves on
            stale = np.flatnonzero(~fresh)
            cut = np.flatnonzero(np.diff(seg[stale])) + 1
            for part in np.split(stale, cut):
                out[order[part]] = self.model.score(t[part], v[part], states[seg[part[0]]].copy())
        f = np.flatnonzero(fresh)
        if f.size == 0:
            return
        tf, sf = t[f], seg[f]
        keep = np.ones(f.size, dtype=bool)  # same station and ts: the last one wins
        keep[:-1] = (tf[1:] != tf[:-1]) | (sf[1:] != sf[:-1])
        kept = np.flatnonzero(keep)
        kb = np.concatenate(([0], np.cumsum(np.bincount(sf[kept], minlength=k))))
        sc = self.model.score_many(states, tf[kept], v[f][kept], kb)
        out[order[f]] = sc[np.searchsorted(kept, np.arange(f.size))]

    def _score_each(self, states: list[SeriesState], bounds: np.ndarray, order: np.ndarray,
                    t: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
        """Station by station: the reference path ``score_many`` must agree with."""
        for state, a, b in zip(states, bounds[:-1].tolist(), bounds[1:].tolist()):
            part, tp, vp = order[a:b], t[a:b], v[a:b]
            if self.model.history == 0:
                out[part] = self.model.score(tp, vp, state)
                continue
            newest = state.ts[-1] if state.ts.size else np.iinfo(np.int64).min
            fresh = tp > newest
            if (~fresh).any():
                out[part[~fresh]] = self.model.score(tp[~fresh], vp[~fresh], state.copy())
            if fresh.any():
                tf, vf = tp[fresh], vp[fresh]
                keep = np.concatenate((tf[1:] != tf[:-1], [True]))  # same ts: last wins
                sc = self.model.score(tf[keep], vf[keep], state)
                out[part[fresh]] = sc[np.searchsorted(np.flatnonzero(keep), np.arange(tf.size))]

    def set_model(self, model: Detector) -> None:
        """Swap in a reloaded model; each station's recent readings carry over."""
        old = self.states
        self.model = model
        self.states = {}
        for name, s in old.items():
            new = model.new_state(name)
            h = model.history
            new.ts, new.v = (s.ts[-h:], s.v[-h:]) if h else (s.ts[:0], s.v[:0])
            self.states[name] = new


class RecordFilter:
    """Alarm-style scores: keep a reading's score only when it beats its recent past.

    With ``z = -log2(1 - score)`` (the calibrated unusualness: 1 at score 0.5), a
    reading scores ``1 - 2 ** -(z / max(floor, past))`` when that ratio exceeds 1, else 0:
    a record-breaking reading alarms, the readings after it stay quiet until something
    more unusual comes. ``floor`` keeps a quiet past from making every small wobble a
    record. Defaults (memory 1000, floor 2) were chosen on NAB.

    ``past`` is the largest z of the previous ``memory`` readings, or with ``fading`` the
    largest of ``z_j * exp(-age_j / memory)`` over every earlier reading j (``memory`` is
    then the e-folding age). Why fading: a window forgets a big record all at once, and
    a long window (5000 rows and more) hides later, smaller anomalies of the same file;
    a short one lets the noise make a new "record" about once per window (on NAB's
    realTweets, bench/README.md "nab2"). A fading record lowers the bar gradually, so a
    long memory keeps the wobbles quiet and still lets a later anomaly win once the old
    record has faded (NAB fold A, bench/README.md "nab3": realTweets' false alarm runs
    77 with windows, 39 fading). The fading state is one number (the faded peak), so
    streaming gives the same scores as the whole series, up to rounding.
    """

    def __init__(self, memory: int = 1000, floor: float = 2.0, fading: bool = False) -> None:
        self.memory = int(memory)
        self.floor = float(floor)
        self.fading = bool(fading)
        if self.fading and self.memory < 1:
            raise ValueError("RecordFilter: a fading record needs memory >= 1")
        self.tail = np.zeros(0)
        self.peak = 0.0   # fading: the faded largest z, as of the last reading seen

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        z = -np.log2(np.maximum(1.0 - np.asarray(scores, dtype=np.float64), 1e-300))
        prev = self._faded(z) if self.fading else self._window(z)
        r = z / np.maximum(prev, self.floor)
        return np.where(r > 1.0, -np.expm1(-np.log(2.0) * r), 0.0)

    def _window(self, z: np.ndarray) -> np.ndarray:
        k = self.memory
        pad = np.concatenate((np.zeros(max(k - self.tail.size, 0)), self.tail[-k:], z))
        prev = sliding_window_view(pad[:-1], k).max(axis=1) if k else np.zeros(z.size)
        self.tail = pad[-k:].copy() if k else self.tail
        return prev

    def _faded(self, z: np.ndarray) -> np.ndarray:
        """``max_j z_j exp(-(i - j) / memory)`` over readings j before i, including the
        carried peak: in logs a running maximum of ``log z_j + j / memory``."""
        if not z.size:
            return z
        tau = float(self.memory)
        age = np.arange(z.size + 1) / tau    # reading -1 is the carried peak
        with np.errstate(divide="ignore"):
            lz = np.log(np.concatenate(([self.peak], z))) + age
        run = np.maximum.accumulate(lz)
        self.peak = float(np.exp(run[-1] - age[-1]))
        return np.exp(run[:-1] - age[1:])


class StationScorer:
    """Per-station streaming state of a station model (pca, mcd) over mixed envelopes.

    Each reading of a metric the model uses gets the score of its station's row at its
    timestamp (station.py: a row at every distinct timestamp of any of the metrics); a
    reading of another metric, or of a row already scored (a replay), gets NaN. Only
    the envelope's new readings are scored: each station's :class:`StationState` carries
    the newest reading of every metric and the rows the model looks back on.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.states: dict[str, Any] = {}

    def score_envelope(self, stations: Sequence[str], si: np.ndarray, metrics: Sequence[str],
                       mi: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        ts = np.asarray(ts, dtype=np.int64)
        out = np.full(ts.size, np.nan)
        code = {m: j for j, m in enumerate(metrics)}
        used = np.full(len(metrics) + 1, -1)
        for k, m in enumerate(self.model.metrics):
            if m in code:
                used[code[m]] = k
        mk = used[np.asarray(mi)]
        sel = np.flatnonzero(mk >= 0)
        if sel.size == 0:
            return out
        si = np.asarray(si)
        v = np.asarray(values, dtype=np.float64)
        order = sel[np.lexsort((ts[sel], mk[sel], si[sel]))]  # station, metric, time; stable
        st = si[order]
        cuts = np.concatenate(([0], np.flatnonzero(st[1:] != st[:-1]) + 1, [order.size]))
        states, slow = [], []
        for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
            name = stations[int(st[a])]
            state = self.states.get(name)
            if state is None:
                state = self.states[name] = self.model.new_state(name)
            (states if ready(self.model, state) else slow).append((state, a, b))
        for state, a, b in slow:  # a station's first rows: one by one
            self._one(state, order[a:b], mk, ts, v, out)
        if states:  # the steady state: every station at once (station_batch.py)
            part = order[np.concatenate([np.arange(a, b) for _, a, b in states])]
            k = np.repeat(np.arange(len(states)), [b - a for _, a, b in states])
            rk, rt, scores = score_stations(self.model, [s for s, _, _ in states], k, mk[part],
                                            ts[part], v[part])
            if rk.size:
                span = int(max(rt.max(), ts[part].max())) + 1 - int(min(rt.min(), ts[part].min()))
                lo = int(min(rt.min(), ts[part].min()))
                keys = rk * span + (rt - lo)
                want = k * span + (ts[part] - lo)
                i = np.clip(np.searchsorted(keys, want), 0, keys.size - 1)
                out[part] = np.where(keys[i] == want, scores[i], np.nan)
        return out

    def _one(self, state: Any, part: np.ndarray, mk: np.ndarray, ts: np.ndarray,
             v: np.ndarray, out: np.ndarray) -> None:
        names = self.model.metrics
        pm = mk[part]
        mcuts = np.concatenate(([0], np.flatnonzero(pm[1:] != pm[:-1]) + 1, [part.size]))
        series = {names[int(pm[c])]: (ts[part[c:d]], v[part[c:d]])
                  for c, d in zip(mcuts[:-1].tolist(), mcuts[1:].tolist())}
        row_ts, scores = self.model.score_station(series, state)
        if row_ts.size:
            t = ts[part]
            i = np.clip(np.searchsorted(row_ts, t), 0, row_ts.size - 1)
            out[part] = np.where(row_ts[i] == t, scores[i], np.nan)
