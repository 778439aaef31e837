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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from yujing.models.base import Detector, FeatureSchema, SeriesState, unusualness
from yujing.models.baseline import SeasonalBaseline
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

    def copy(self) -> EnsembleState:
        return EnsembleState(self.station, self.key, self.ts.copy(), self.v.copy(),
                             self.z.copy())


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
                  params: dict[str, Any]) -> np.ndarray:
        """(len(v) - start, members) unusualness of each member for ``v[start:]``."""
        return np.stack([unusualness(m._score(ts, v, start, params[k]))
                         for k, m in self.members.items()], axis=1)

    def _combine(self, past: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``z`` given the members' z of (up to) ``record`` readings
        before them (``past``, oldest first)."""
        if not self.record:
            return -np.expm1(-np.log(2.0) * z.max(axis=1)) if z.size else np.zeros(z.shape[0])
        k = self.record
        past = past[-k:]
        pad = np.concatenate((np.zeros((k - past.shape[0], z.shape[1])), past, z))
        prev = sliding_window_view(pad[:-1], k, axis=0).max(axis=2)  # (n, members)
        floors = np.array([self.floors[m] for m in self.members])
        r = z / np.maximum(prev, floors)
        filtered = np.where(r > 1.0, -np.expm1(-np.log(2.0) * r), 0.0)
        return filtered.max(axis=1)

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        if start == v.size:
            return np.empty(0)
        # every member's z of the readings the record filter looks back on, then filter
        z0 = max(start - self.record, 0)
        z = self._member_z(ts, v, z0, params)
        return self._combine(z[: start - z0], z[start - z0:])

    def _score_state(self, state: SeriesState, ts: np.ndarray, v: np.ndarray,
                     start: int) -> np.ndarray:
        if start == v.size:  # nothing new (every new reading was missing)
            return np.empty(0)
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
        z = self._member_z(ts, v, start, params)
        if isinstance(state, EnsembleState):
            keep = min(self.record, past.shape[0] + z.shape[0])
            state.z = np.concatenate((past, z))[-keep:] if keep else past[:0]
        return self._combine(past, z)

    def _advance(self, state: SeriesState, ts: np.ndarray, v: np.ndarray) -> None:
        super()._advance(state, ts, v)
        if isinstance(state, EnsembleState):
            state.z = state.z[max(state.z.shape[0] - min(self.record, state.v.size), 0):]
