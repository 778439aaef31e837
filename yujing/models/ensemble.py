"""Ensemble: the seasonal baseline, the spike detector and IsolationForest as one model.

Each member scores every reading as it would alone (same parameters, same
calibration). Each member's scores then pass through its own record filter: a
reading keeps its calibrated unusualness ``z = -log2(1 - score)`` only when it beats
``max(floor, every z of that member over the previous record readings)``, as
:class:`~yujing.models.scoring.RecordFilter` does. The ensemble score is the largest
of the filtered member scores. So each member alarms on its own record-breaking
readings: a level shift the spike detector sees first is not hidden by a baseline
that has been unusual for days, and one anomaly gives one alarm, not a run of them.

Filtering each member before the maximum matters. Taking the maximum of the plain
scores and filtering once scores much lower on NAB (47 against 54 standard), because
a member that is unusual all the time then silences the others.

``record=0`` turns the filters off: the score is then the largest plain member score,
which is what a rule with a ``for:`` duration wants.

The score of a reading depends on that reading and at most ``history = record +
max(member history)`` readings before it (the record filter looks back ``record``
members' scores, each of which looks back its member's history). So the contract
holds as for every detector. The state keeps the members' z of its readings as a
cache. A state without that cache (a reloaded model, a refit) rebuilds it from its
readings, with the same result.

Defaults: record memory 1000 and floor 2 come from the single detectors' evaluation
(chosen on NAB). IsolationForest's floor is 1 because its calibrated scores saturate
below twice the training reference (docs/models.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from yujing.models.base import (
    Detector,
    FeatureSchema,
    ModelError,
    SeriesState,
    calibrate_rows,
    unusualness,
)
from yujing.models.baseline import SeasonalBaseline
from yujing.models.features import robust_rows
from yujing.models.iforest import IsolationForestDetector
from yujing.models.spike import SpikeDetector

MEMBERS: dict[str, type[Detector]] = {
    SeasonalBaseline.kind: SeasonalBaseline,
    SpikeDetector.kind: SpikeDetector,
    IsolationForestDetector.kind: IsolationForestDetector,
}
FLOORS = {"baseline": 2.0, "spike": 2.0, "iforest": 1.0}


@dataclass
class EnsembleState(SeriesState):
    """A series' tail plus each member's z of the newest of those readings (a cache)."""

    z: np.ndarray = field(default_factory=lambda: np.empty((0, len(MEMBERS))))
    # the spike member's clipped level residuals of the newest readings (SpikeState.r)
    r: np.ndarray = field(default_factory=lambda: np.empty(0))

    def copy(self) -> EnsembleState:
        return EnsembleState(self.station, self.key, self.ts.copy(), self.v.copy(),
                             self.z.copy(), self.r.copy())


def _schema() -> FeatureSchema:
    parts = tuple(f"{k}:{c.schema.name}/v{c.schema.version}/{c.schema.hash}"
                  for k, c in MEMBERS.items())
    return FeatureSchema("ensemble", 1, parts + ("record_filter",))


class EnsembleDetector(Detector):
    kind = "ensemble"
    schema = _schema()

    def __init__(self, seed: int = 0, record: int = 1000,
                 floors: Mapping[str, float] | None = None,
                 members: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        super().__init__(seed)
        self.record = int(record)
        if self.record < 0:
            raise ValueError("ensemble: record must be >= 0 (0 = plain scores)")
        unknown = set(floors or {}) | set(members or {})
        unknown -= set(MEMBERS)
        if unknown:
            raise ValueError(f"ensemble: unknown member(s) {', '.join(sorted(unknown))}; the "
                             f"members are {', '.join(MEMBERS)}")
        self.floors = {k: float((floors or {}).get(k, FLOORS[k])) for k in MEMBERS}
        member_hyper = {k: dict((members or {}).get(k, {})) for k in MEMBERS}
        for h in member_hyper.values():
            h.pop("seed", None)
        self.members: dict[str, Detector] = {k: cls(seed=seed, **member_hyper[k])
                                             for k, cls in MEMBERS.items()}
        self.history = self.record + max(m.history for m in self.members.values())
        self.alarm_style = self.record > 0

    def hyper(self) -> dict[str, Any]:
        members = {}
        for k, m in self.members.items():
            h = m.hyper()
            h.pop("seed", None)
            members[k] = h
        return {"seed": self.seed, "record": self.record, "floors": dict(self.floors),
                "members": members}

    def new_state(self, station: str = "*") -> EnsembleState:
        base = super().new_state(station)
        return EnsembleState(base.station, base.key)

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        return {k: m._fit_key(series) for k, m in self.members.items()}

    # -- scoring ------------------------------------------------------------------------

    def _member_z(self, ts: np.ndarray, v: np.ndarray, start: int,
                  params: dict[str, Any], state: SeriesState | None = None) -> np.ndarray:
        """(len(v) - start, members) unusualness of each member for ``v[start:]``; an
        :class:`EnsembleState` gets the spike member's residual cache of ``v``'s newest."""
        cols = []
        for k, m in self.members.items():
            if isinstance(m, SpikeDetector) and isinstance(state, EnsembleState):
                p = params[k]
                raw, r = m._raw(v, start, p["floor"], p["dfloor"])
                state.r = r[-m.cusum_span:].copy() if r.size >= m.cusum_span else r[:0]
                cols.append(unusualness(m._calibrated(raw, p)))
            else:
                cols.append(unusualness(m._score(ts, v, start, params[k])))
        return np.stack(cols, axis=1)

    def _member_tables(self) -> None:
        """Point each member's ``params`` at its part of the ensemble's (key → parameters),
        so the members' vectorised ``score_many`` can run on the ensemble's states."""
        if getattr(self, "_tables_of", None) is not self.params:
            for k, m in self.members.items():
                m.params = {key: p[k] for key, p in self.params.items()}
            self._tables_of = self.params

    def _combine(self, past: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``z`` given the members' z of (up to) ``record`` readings
        before them (``past``, oldest first)."""
        if not self.record:
            return -np.expm1(-np.log(2.0) * z.max(axis=1)) if z.size else np.zeros(z.shape[0])
        k = self.record
        past = past[-k:]
        pad = np.concatenate((np.zeros((k - past.shape[0], z.shape[1])), past, z))
        prev = window_max(pad[:-1], k)  # (n, members)
        floors = np.array([self.floors[m] for m in self.members])
        r = z / np.maximum(prev, floors)
        filtered = np.where(r > 1.0, -np.expm1(-np.log(2.0) * r), 0.0)
        return filtered.max(axis=1)

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        if start == v.size:
            return np.empty(0)
        self._member_tables()  # the forest member then walks its bank (iforest._raw)
        # every member's z of the readings the record filter looks back on, then filter
        z0 = max(start - self.record, 0)
        z = self._member_z(ts, v, z0, params)
        return self._combine(z[: start - z0], z[start - z0:])

    def _score_state(self, state: SeriesState, ts: np.ndarray, v: np.ndarray,
                     start: int) -> np.ndarray:
        if start == v.size:  # nothing new (every new reading was missing)
            return np.empty(0)
        self._member_tables()
        params = self.params[state.key]
        cache = getattr(state, "z", None)
        need = min(self.record, start)
        if cache is None or cache.shape[0] < need or (start and cache.shape[0] > start):
            # no cache (a reloaded model, a refit): rebuild it from the tail's readings
            z0 = start - need
            past = self._member_z(ts[:start], v[:start], z0, params) if need else \
                np.empty((0, len(self.members)))
        else:
            past = cache[cache.shape[0] - need:]
        z = self._member_z(ts, v, start, params, state)
        if isinstance(state, EnsembleState):
            keep = min(self.record, past.shape[0] + z.shape[0])
            state.z = np.concatenate((past, z))[-keep:] if keep else past[:0]
        return self._combine(past, z)

    def _advance(self, state: SeriesState, ts: np.ndarray, v: np.ndarray) -> None:
        super()._advance(state, ts, v)
        if isinstance(state, EnsembleState):
            state.z = state.z[max(state.z.shape[0] - min(self.record, state.v.size), 0):]

    # -- a worker's envelope: every station at once ---------------------------------------

    def prepare(self) -> None:
        """Flatten the forest member now (see ``IsolationForestDetector.prepare``)."""
        if self.params:
            self._member_tables()
            self.members["iforest"].prepare()

    def score_many(self, states: Sequence[SeriesState], ts: np.ndarray, values: np.ndarray,
                   bounds: np.ndarray) -> np.ndarray:
        """:meth:`Detector.score_many`, vectorised: the members' own ``score_many`` over
        every station, then the record filters of all stations at once. Series whose state
        is full (``history`` readings, ``record`` cached z, the spike residuals) and whose
        new readings are finite take this path; the rest go through :meth:`score`."""
        if not self.params:
            raise ModelError(f"{self.kind}: score() before fit(): train or load the model first")
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        bounds = np.asarray(bounds, dtype=np.int64)
        out = np.empty(ts.size)
        lens = np.diff(bounds)
        k = len(states)
        spike = self.members["spike"]
        ok = (lens > 0) & ((lens <= self.record) | (self.record == 0)) & np.fromiter(
            (isinstance(s, EnsembleState) and s.v.size >= self.history
             and s.z.shape[0] == self.record and s.r.size == spike.cusum_span
             for s in states), bool, k)
        bad = ~np.isfinite(values)
        if bad.any():
            ok[np.repeat(np.arange(k), lens)[bad]] = False
        for j in np.flatnonzero(~ok & (lens > 0)).tolist():
            a, b = bounds[j], bounds[j + 1]
            out[a:b] = self.score(ts[a:b], values[a:b], states[j])
        fast = np.flatnonzero(ok)
        if fast.size:
            where = IsolationForestDetector.ranges(bounds[fast], lens[fast])
            out[where] = self._score_fast([states[j] for j in fast.tolist()], ts[where],
                                          values[where], lens[fast])
        return out

    def _key_table(self) -> tuple[dict[str, int], dict[str, np.ndarray]]:
        """key → index, and the baseline's and spike member's parameters of every key as
        arrays in that order (the forest bank's), so an envelope's readings take theirs
        by indexing. Built once per parameter table (a reload or refit builds anew)."""
        if getattr(self, "_keys_of", None) is not self.params:
            self._member_tables()
            forest = self.members["iforest"]
            index, _ = forest.bank(forest.params)
            spike = [p["spike"] for p in self.params.values()]
            base = [p["baseline"] for p in self.params.values()]
            self._keys = (index, {
                "floor": np.array([p["floor"] for p in spike]),
                "dfloor": np.array([p["dfloor"] for p in spike]),
                "refs": np.array([p["refs"] for p in spike], dtype=np.float64).reshape(-1, 3),
                "median": np.stack([p["median"] for p in base]),
                "scale": np.stack([p["scale"] for p in base]),
                "ref": np.array([p["ref"] for p in base], dtype=np.float64)})
            self._keys_of = self.params
        return self._keys

    def _score_fast(self, states: list[EnsembleState], ts: np.ndarray, values: np.ndarray,
                    n: np.ndarray) -> np.ndarray:
        """Every member on one (stations, history + most new) matrix of the readings: each
        state's last ``history`` readings followed by its new ones. The members compute
        what they compute alone, on the same numbers (the same windows, the forest's
        running sums from the same first reading), so the scores are theirs; the spike
        member and the forest share the median and scale of the window before a reading."""
        index, tab = self._key_table()
        spike = self.members["spike"]
        forest = self.members["iforest"]
        base = self.members["baseline"]
        k, h, m = len(states), self.history, int(n.max())
        first = np.cumsum(n) - n
        row = np.repeat(np.arange(k), n)
        q = np.arange(ts.size) - np.repeat(first, n)  # a reading's place among its new
        key = np.fromiter((index[s.key] for s in states), np.int64, k)[row]
        # score_many let only full states through: each one's last h readings side by side
        wide = behind([s.v[-h:] for s in states], values, row, q, m)
        pos = h + q
        w = spike.window
        level = robust_rows(sliding_window_view(wide, w, axis=1)[row, pos - w])
        cols: dict[str, np.ndarray] = {}
        # the spike member: steps from the reading window + 1 before the first new one on
        b0 = h - w - 1
        steps = np.diff(wide[:, b0:], axis=1)  # steps[:, c]: the step into column b0 + c + 1
        cols["spike"], r = spike.score_rows(
            values, level, steps[row, q + w], sliding_window_view(steps, w, axis=1)[row, q],
            np.stack([s.r for s in states]), row, q, tab["floor"][key], tab["dfloor"][key],
            tab["refs"][key])
        # the forest: its rows start its window before the first new reading
        fw = forest.window
        cols["iforest"] = forest.score_matrix(wide[:, h - fw:], row, fw + q, key,
                                              level if fw == w else None)
        # the baseline reads no past, only the keys' tables
        slot = base._slots(ts)
        bz = np.abs(values - tab["median"][key, slot]) / tab["scale"][key, slot]
        cols["baseline"] = calibrate_rows(bz, tab["ref"][key])
        z = np.stack([unusualness(cols[name]) for name in self.members], axis=1)
        # every state's last h readings and record z followed by its new ones, written
        # once: the states keep views into this call's arrays, which are not written again
        wide_t = behind([s.ts[-h:] for s in states], ts, row, q, m)
        wide_z = behind([s.z for s in states], z, row, q, m) if self.record else None
        scores = self._combine_many(wide_z[:, :self.record] if self.record else None,
                                    z, n, row, q)
        span = spike.cusum_span
        for j, (s, c) in enumerate(zip(states, n.tolist())):
            s.ts, s.v, s.r = wide_t[j, c:c + h], wide[j, c:c + h], r[j, c:c + span]
            if wide_z is not None:
                s.z = wide_z[j, c:c + self.record]
        return scores

    def _combine_many(self, cache: np.ndarray | None, z: np.ndarray, n: np.ndarray,
                      row: np.ndarray, q: np.ndarray) -> np.ndarray:
        """:meth:`_combine` of every station at once (``cache``: the stations' cached z,
        (stations, record, members); ``row``, ``q``: a reading's station and its place
        among the station's new readings). The maximum over a reading's previous
        ``record`` z is the larger of the cached z from its position on (a suffix maximum)
        and the new z before it (a prefix maximum): the same values, no sliding window."""
        if cache is None:
            return -np.expm1(-np.log(2.0) * z.max(axis=1))
        k, m = cache.shape[0], int(n.max())
        # only positions q < m are asked for: the maximum of the cache from q on is that of
        # its first m z from q on and of all the rest (z >= 0: an empty rest counts 0)
        # (member by member: numpy's maximum over the middle axis of a (.., .., 3) array is
        # twenty times slower)
        rest = np.zeros(cache[:, 0].shape)
        if m < cache.shape[1]:
            rest = np.stack([cache[:, m:, j].max(axis=1) for j in range(cache.shape[2])], axis=1)
        suffix = np.maximum(np.maximum.accumulate(cache[:, m - 1::-1], axis=1)[:, ::-1],
                            rest[:, None, :])
        new = np.zeros((k, m + 1, z.shape[1]))  # z >= 0: a zero before the first is neutral
        new[row, q + 1] = z
        prefix = np.maximum.accumulate(new, axis=1)
        prev = np.maximum(suffix[row, q], prefix[row, q])
        floors = np.array([self.floors[name] for name in self.members])
        r = z / np.maximum(prev, floors)
        filtered = np.where(r > 1.0, -np.expm1(-np.log(2.0) * r), 0.0)
        return filtered.max(axis=1)


def behind(tails: list[np.ndarray], new: np.ndarray, row: np.ndarray, q: np.ndarray,
           most: int) -> np.ndarray:
    """One (series, length + most, ...) array: row ``r`` is ``tails[r]`` (all of one
    shape) followed by its new items (item ``i`` of ``new`` is the ``q[i]``-th new one
    of series ``row[i]``), then zeros. Each series' last ``length`` items after its new
    ones are then a view, ``out[r, n_r:n_r + length]``: one array filled in three numpy
    steps (a concatenation per series costs several times more, and stacking the tails
    first and copying them in again twice as much)."""
    length = tails[0].shape[0]
    out = np.empty((len(tails), length + most) + tails[0].shape[1:], np.result_type(*tails[:1],
                                                                                     new))
    np.stack(tails, out=out[:, :length])
    out[:, length:] = 0
    out[row, length + q] = new
    return out


def window_max(x: np.ndarray, k: int) -> np.ndarray:
    """``max(x[j:j + k])`` along the first axis for every ``j`` (a (rows - k + 1, columns)
    array), exact, in time linear in the rows rather than rows × ``k``: cut into blocks
    of ``k``, a window is the end of one block and the start of the next, so its maximum
    is the larger of a running maximum from the block's end and one from the next's start
    (van Herk / Gil-Werman)."""
    rows, cols = x.shape
    n = rows - k + 1
    blocks = -(-rows // k)
    flat = np.full((cols, blocks * k), -np.inf)  # one member per row: contiguous blocks
    flat[:, :rows] = x.T
    cut = flat.reshape(cols, blocks, k)
    forward = np.maximum.accumulate(cut, axis=2).reshape(cols, -1)
    backward = np.maximum.accumulate(cut[:, :, ::-1], axis=2)[:, :, ::-1].reshape(cols, -1)
    return np.maximum(backward[:, :n], forward[:, k - 1:k - 1 + n]).T
