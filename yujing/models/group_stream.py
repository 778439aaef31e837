"""The worker's scorer for group models (neighbours): a group's rows, closed in time order.

Why its own scorer: a group model (:class:`~yujing.models.group.GroupNeighbours`) predicts
each station of a group from the others *at the same time*, and its streaming state (EWMA,
CUSUM, the residual's local level) runs over the group's rows in time order. A station's
reading alone cannot be scored; its row can, once the group's readings of that time are in.

**When a row closes.** Row ``t`` is scored when every station of the group has a reading
at or after ``t``, or when two stations are one row step (the model's training spacing,
``GroupNeighbours.row_step_ms``) past ``t``. Two, not one: a gateway flushing a station's
backlog must not close the rows its neighbours have yet to report (and a row needs two
stations to be scored at all). A station whose reading of ``t`` comes later than that is
missing at that row, as a gap is in ``yujing models score``: it is left out of its
neighbours' medians and has no score itself. Such a reading is counted in
:attr:`GroupScorer.late` and never scored (the row's state has moved on). Stations of the
group that this worker never saw hold nothing back (the step closes the rows).

**What the engine needs.** Each station's scored rows (row time, score), newest last: a
rule's point of station ``s`` at time ``t`` reads ``s``'s newest row at or before ``t``.
A ring of ``KEEP_ROWS`` rows per station is kept (points are the envelope's times), or
all the rows one call scored when it scored more (a worker catching up on a backlog
evaluates a day of rows in one pass: found by the live test, where the first pass
held 150 rows and only the last 64 had a score).

**Durability.** :meth:`snapshot` gives the state, the newest closed row and the rings as
plain values and little-endian bytes; a restored worker hands them back to the same model
(the sha256 of its signed payload). Unlike stream.py's rings these repeat no readings (the
state holds model residuals, the rows times and scores, and a reading that came after its
row closed has no row: the window cannot give them back), so they are kept whole. A
checkpoint without them, or a changed model, starts the group afresh from the retained
readings (EWMA and CUSUM from zero, the local level from the fitted one until a day of
rows).

Pure logic: numpy only, time comes in with the readings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from yujing.models.stream_base import NONE_SCORED, Series, array_bytes, array_of, model_key

KEEP_ROWS = 64  # scored rows kept per station: the engine reads the newest at an envelope's times
EMPTY_ROWS: Series = (np.empty(0, np.int64), np.empty(0))


@dataclasses.dataclass
class GroupEntry:
    """One group model's streaming state, its newest closed row and each station's rows."""

    state: Any  # the model's group state (neighbours.NeighbourState)
    done: int = NONE_SCORED  # time of the newest closed row
    rows: dict[str, Series] = dataclasses.field(default_factory=dict)  # station → (ts, scores)
    late: set[tuple[str, int]] = dataclasses.field(default_factory=set)  # counted in .late


class GroupScorer:
    """Scores a group model's rows as they close; one per engine (one worker partition)."""

    def __init__(self) -> None:
        self.entries: dict[str, GroupEntry] = {}  # model key → entry
        self.models: dict[str, Any] = {}  # model key → the model object the entry belongs to
        self.pending: dict[str, Any] = {}  # restored, not yet claimed
        self.scored = 0  # station rows scored: for tests and figures
        self.late = 0  # station rows whose readings came after the row closed (never scored)

    def _entry(self, model: Any) -> GroupEntry:
        key = model_key(model)
        if self.models.get(key) is not model or key not in self.entries:
            self.models[key] = model
            self.entries[key] = self._claim(model, key) or GroupEntry(model.new_group_state())
        return self.entries[key]

    def update(self, model: Any, series: Mapping[str, Mapping[str, Series]]
               ) -> Mapping[str, Series]:
        """Score the rows that have closed; ``series`` is station → metric → (ts, values),
        the retained readings (sorted by time) of the group's stations this worker holds.
        Returns station → (row ts, scores), the scored rows kept (newest last)."""
        e = self._entry(model)
        newest = {s: max((int(t[-1]) for t, _ in ms.values() if t.size), default=NONE_SCORED)
                  for s, ms in series.items()}
        if not newest:
            return e.rows
        everyone = min(newest.get(s, NONE_SCORED) for s in model.stations)
        ahead = sorted(newest.values())[-2] if len(newest) > 1 else NONE_SCORED
        until = max(everyone, ahead - int(model.row_step_ms))
        self._count_late(e, series, int(model.row_step_ms))
        times = np.unique(np.concatenate(
            [t[(t > e.done) & (t <= until)] for ms in series.values() for t, _ in ms.values()]
            or [np.empty(0, np.int64)]))
        if times.size == 0:
            return e.rows
        values, have = self._aligned(model, series, times)
        scores = model.score_rows(values, e.state)
        for k, station in enumerate(model.stations):
            rows = np.flatnonzero(have[:, k])
            if rows.size:
                old_t, old_s = e.rows.get(station, EMPTY_ROWS)
                keep = max(KEEP_ROWS, rows.size)  # a catch-up pass reads all its rows
                e.rows[station] = (np.concatenate((old_t, times[rows]))[-keep:],
                                   np.concatenate((old_s, scores[rows, k]))[-keep:])
                self.scored += rows.size
        e.done = int(times[-1])
        return e.rows

    def _count_late(self, e: GroupEntry, series: Mapping[str, Mapping[str, Series]],
                    step: int) -> None:
        """Station rows with readings at or before the newest closed row that were closed
        without them (each counted once, within the rings' reach: ``KEEP_ROWS`` rows)."""
        if e.done == NONE_SCORED:
            return
        floor = e.done - KEEP_ROWS * step
        names = list(series)
        got_t = [t for s in names for t, _ in series[s].values()]
        got_k = np.repeat([j for j, s in enumerate(names) for _ in series[s]],
                          [t.size for t in got_t])
        t = np.concatenate(got_t)
        sel = (t > floor) & (t <= e.done)
        rings = [e.rows.get(s, EMPTY_ROWS)[0] for s in names]
        ring_k = np.repeat(np.arange(len(names)), [r.size for r in rings])
        ring_t = np.concatenate(rings)
        first = np.full(len(names), np.iinfo(np.int64).max)
        np.minimum.at(first, ring_k, ring_t)  # readings before a station's ring: not judged
        sel &= t >= np.where(first[got_k] == np.iinfo(np.int64).max, floor, first[got_k])
        span = KEEP_ROWS * step + 1
        keys = got_k[sel] * span + (t[sel] - floor)
        ring = ring_t > floor
        missing = np.unique(keys[~np.isin(keys, ring_k[ring] * span + (ring_t[ring] - floor))])
        e.late = {k for k in e.late if k[1] > floor}
        for key in missing.tolist():
            late = (names[key // span], key % span + floor)
            if late not in e.late:
                e.late.add(late)
                self.late += 1

    @staticmethod
    def _aligned(model: Any, series: Mapping[str, Mapping[str, Series]], times: np.ndarray
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """metric → rows × stations (NaN: no reading at that row), and which station rows
        have any reading (the rows a station is scored at). All series in one pass."""
        k, m = len(model.stations), len(model.metrics)
        col = {s: j for j, s in enumerate(model.stations)}
        met = {x: i for i, x in enumerate(model.metrics)}
        parts = [(col[s], met[x], t, v) for s, ms in series.items() if s in col
                 for x, (t, v) in ms.items() if x in met]
        grid = np.full((m, times.size, k), np.nan)
        if parts:
            sizes = [p[2].size for p in parts]
            t = np.concatenate([p[2] for p in parts])
            v = np.concatenate([p[3] for p in parts])
            j = np.repeat([p[0] for p in parts], sizes)
            i = np.repeat([p[1] for p in parts], sizes)
            r = np.searchsorted(times, t)
            hit = (r < times.size) & (times[np.minimum(r, times.size - 1)] == t)
            grid[i[hit], r[hit], j[hit]] = v[hit]
        return {x: grid[i] for x, i in met.items()}, np.isfinite(grid).any(axis=0)

    # -- durability --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """model key → the entry as plain values and little-endian bytes."""
        out: dict[str, Any] = dict(self.pending)
        for key, e in self.entries.items():
            if "@" in key:  # a model fitted in memory cannot be matched after a restart
                continue
            state = {f.name: {m: array_bytes(a) for m, a in getattr(e.state, f.name).items()}
                     for f in stored_fields(e.state)}
            out[key] = {"type": type(e.state).__name__, "state": state, "done": e.done,
                        "rows": {s: [array_bytes(t), array_bytes(x)] for s, (t, x) in e.rows.items()}}
        return out

    def restore(self, snap: Mapping[str, Any] | None) -> None:
        """Keep a :meth:`snapshot` until each model asks for its group again."""
        self.pending = dict(snap or {})

    def _claim(self, model: Any, key: str) -> GroupEntry | None:
        saved = self.pending.pop(key, None)
        if saved is None:
            return None
        blank = model.new_group_state()
        try:
            names = {f.name for f in stored_fields(blank)}
            if saved["type"] != type(blank).__name__ or set(saved["state"]) != names:
                return None  # another state layout: start afresh
            for name, arrays in saved["state"].items():
                setattr(blank, name, {m: array_of(a) for m, a in arrays.items()})
            rows = {s: (array_of(t), array_of(x)) for s, (t, x) in saved["rows"].items()}
            return GroupEntry(blank, int(saved["done"]), rows)
        except (KeyError, TypeError, ValueError):
            return None


def stored_fields(state: Any) -> list[dataclasses.Field]:
    """The fields of a group state that a checkpoint holds: all but those marked
    ``transient`` (derived from the others, rebuilt by the next call)."""
    return [f for f in dataclasses.fields(state) if not f.metadata.get("transient")]
