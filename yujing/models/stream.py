"""The worker's anomaly scorer: streaming state per model and station, no rescoring.

The rule engine asks for the scores of a station's retained series (``anomaly()`` in
rules/interpret.py), at every envelope. Rescoring that window each time cost a whole
window of model work per reading. :class:`StreamScorer` keeps, per model and station,
the detector's streaming state and the scores already computed (a ring as long as the
retained window), and scores only the readings after the newest one it has scored.

Exactness: the scores are the one-pass streaming scores, which the old path gave too
for every reading with ``history`` readings before it in the window (the engine keeps
that many: rules/engine.py ``_resolve_models``). When the retained readings no longer
continue what was scored (a late reading merged in before the newest, a changed value,
the window trimmed past the ring), that station is scored again from its retained
window, as before, and streaming resumes from there.

Batches: the engine asks :meth:`StreamScorer.many` (per-metric models) and
:meth:`StreamScorer.stations` (station models) for every station of an envelope at once.
Which readings are new, and whether each station's window still continues its ring, is
worked out on the stations' readings laid end to end, and the new readings of all
stations go to the model's ``score_many`` (``station_batch.score_stations``) in one
call: the numbers of calling :meth:`StreamScorer.__call__` station by station.

Durability: :meth:`snapshot` gives plain values and little-endian bytes that the engine
checkpoints with its own state; :meth:`restore` keeps them until the same model (the
sha256 of its signed payload) asks for that station again. The rings' readings are not
in it: they are the retained window, which the engine's checkpoint holds already (stored
twice they made the checkpoint 3.7 to 5.1 times as large), nor the state's own look-back
readings (their tail). Each entry keeps its state, its scores and a cover of its rings
(count, newest time, digest: stream_ckpt.py), and at restore the rings (and that tail) are
taken from the engine's restored window. A cover the window does not match, a checkpoint
without the state, or a model that changed, simply rebuilds from the retained readings; a
checkpoint of the previous layout (whole rings) is still read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from yujing.models.base import Detector
from yujing.models.group_stream import GroupScorer
from yujing.models.station_batch import ranges, ready, score_stations
from yujing.models.stream_base import NONE_SCORED, Series, model_key
from yujing.models.stream_ckpt import (
    Entry,
    Window,
    attach,
    decode_compact,
    decode_entry,
    encode_compact,
    encode_entry,
    is_compact,
)

__all__ = ["Entry", "StreamScorer", "decode_entry", "encode_entry"]

BLANK: Series = (np.empty(0, np.int64), np.empty(0))  # no readings of a metric yet
GROUPS = "groups"  # the snapshot's key for group models (no model key has this form)


class StreamScorer:
    """A ``Scorer`` for the rule engine (``(model, ts, values, station)`` → scores of the
    whole series) that streams; :meth:`station` does the same for station models."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {}  # model key → station → entry
        self.models: dict[str, Any] = {}  # model key → the model object it was built with
        self.pending: dict[str, dict[str, Any]] = {}  # restored, not yet claimed
        self.rings: dict[tuple[str, str], dict[str, Series] | None] = {}  # theirs, found again
        self.scored = 0  # readings (rows) the models scored: for tests and figures
        self.rebuilt = 0  # stations scored again from their retained window
        self.groups = GroupScorer()  # group models (neighbours): rows closed in time order

    def _entries(self, model: Any) -> dict[str, Entry]:
        key = model_key(model)
        if self.models.get(key) is not model:
            self.models[key] = model
            self.entries[key] = {}
        return self.entries[key]

    # -- per-metric models -------------------------------------------------------------------

    def __call__(self, model: Detector, ts: np.ndarray, values: np.ndarray,
                 station: str) -> np.ndarray:
        entries = self._entries(model)
        entry = entries.get(station) or self._claim(model, station)
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        old = -1 if entry is None else self._continues(entry, ts, values)
        if old < 0:  # nothing scored yet, or the window no longer continues the ring
            self.rebuilt += entry is not None
            entry = Entry(model.new_state(station), ts[:0], values[:0], np.empty(0))
            old = 0
        new = model.score(ts[old:], values[old:], entry.state) if ts.size > old else np.empty(0)
        self.scored += ts.size - old
        scores = np.concatenate((entry.scores[entry.scores.size - old:], new))
        entry.ts, entry.v, entry.scores = ts, values, scores
        entries[station] = entry
        return scores

    @staticmethod
    def _continues(entry: Entry, ts: np.ndarray, v: np.ndarray) -> int:
        """How many readings at the start of (ts, v) the ring already scored, or -1 when
        (ts, v) does not continue the ring."""
        if entry.ts.size == 0:
            return -1
        old = int(np.searchsorted(ts, entry.ts[-1], side="right"))
        if old > entry.ts.size or old == 0:
            return -1
        tail = slice(entry.ts.size - old, None)
        if not (np.array_equal(entry.ts[tail], ts[:old])
                and np.array_equal(entry.v[tail], v[:old], equal_nan=True)):
            return -1
        return old

    def many(self, model: Detector, stations: Sequence[str], ts: np.ndarray,
             values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """:meth:`__call__` for several stations at once: ``ts[bounds[k]:bounds[k + 1]]``
        is station ``stations[k]``'s retained series (sorted, one value per timestamp);
        returns the scores of all of them, laid out as ``ts``. One ``score_many`` call
        scores the new readings of every station."""
        entries = self._entries(model)
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        bounds = np.asarray(bounds, dtype=np.int64)
        ents = [entries.get(name) or self._claim(model, name) for name in stations]
        rings = [(e.ts, e.v) if e is not None else BLANK for e in ents]
        last = np.array([t[-1] if t.size else NONE_SCORED for t, _ in rings], np.int64)
        old = _continued(rings, last, ts, values, bounds, start_ok=False)
        for k in np.flatnonzero(old < 0).tolist():
            self.rebuilt += ents[k] is not None
            ents[k] = Entry(model.new_state(stations[k]), ts[:0], values[:0], np.empty(0))
        old = np.maximum(old, 0)
        size = np.diff(bounds)
        new = size - old
        out = np.empty(ts.size)
        fresh = ranges(bounds[:-1] + old, new)
        if fresh.size:
            live = np.flatnonzero(new > 0)
            out[fresh] = model.score_many([ents[k].state for k in live.tolist()], ts[fresh],
                                          values[fresh], np.concatenate(([0], np.cumsum(new[live]))))
            self.scored += int(fresh.size)
        have = np.flatnonzero(old > 0)
        if have.size:
            out[ranges(bounds[have], old[have])] = np.concatenate(
                [ents[k].scores[ents[k].scores.size - o:] for k, o in
                 zip(have.tolist(), old[have].tolist())])
        for k, (a, b) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
            e = ents[k]
            e.ts, e.v, e.scores = ts[a:b], values[a:b], out[a:b]
            entries[stations[k]] = e
        return out

    # -- station models ----------------------------------------------------------------------

    def station(self, model: Any, series: Mapping[str, Series], station: str
                ) -> tuple[np.ndarray, np.ndarray]:
        """(row timestamps, scores) of a station model over the station's retained readings
        of each metric, scoring only the readings after the newest row already scored."""
        entries = self._entries(model)
        entry = entries.get(station) or self._claim(model, station)
        series = {m: (np.asarray(t, dtype=np.int64), np.asarray(x, dtype=np.float64))
                  for m, (t, x) in series.items()}
        fresh = None if entry is None else self._new_readings(entry, series)
        if fresh is None:
            self.rebuilt += entry is not None
            entry = Entry(model.new_state(station), np.empty(0, np.int64), np.empty(0),
                          np.empty(0))
            fresh = series
        row_ts, new = model.score_station(fresh, entry.state)
        self.scored += row_ts.size
        keep = max(sum(t.size for t, _ in series.values()), 1)
        entry.row_ts = np.concatenate((entry.row_ts, row_ts))[-keep:]
        entry.scores = np.concatenate((entry.scores, new))[-keep:]
        entry.seen = series
        entries[station] = entry
        return entry.row_ts, entry.scores

    def stations(self, model: Any, stations: Sequence[str], ts: np.ndarray, values: np.ndarray,
                 bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`station` for several stations at once. ``bounds`` has one segment per
        (station, metric of ``model.metrics``), station-major: segment ``k * m + j`` is
        station k's retained readings of metric j (sorted, may be empty). Returns every
        station's scored rows (station index, row ts, score), sorted by station and time;
        the stations' new readings are scored in one pass (station_batch.py) once their
        states hold their look-back rows."""
        entries = self._entries(model)
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        bounds = np.asarray(bounds, dtype=np.int64)
        m = len(model.metrics)
        ents = [entries.get(name) or self._claim(model, name) for name in stations]
        after = np.array([e.row_ts[-1] if e is not None and e.row_ts.size else NONE_SCORED
                          for e in ents], np.int64)
        rings = [e.seen.get(metric, BLANK) if e is not None else BLANK
                 for e in ents for metric in model.metrics]
        old = _continued(rings, np.repeat(after, m), ts, values, bounds, start_ok=True)
        size = np.diff(bounds)
        bad = ((old < 0).reshape(-1, m).any(axis=1) | (after == NONE_SCORED)) & (
            size.reshape(-1, m).sum(axis=1) > 0)
        for k in np.flatnonzero(bad).tolist():
            self.rebuilt += ents[k] is not None
            ents[k] = Entry(model.new_state(stations[k]), np.empty(0, np.int64), np.empty(0),
                            np.empty(0))
        old = np.where(np.repeat(bad, m), 0, old)
        new = size - old
        keep = np.maximum(size.reshape(-1, m).sum(axis=1), 1)
        fast = np.array([e is not None and ready(model, e.state) for e in ents], bool) & ~bad
        rows = self._rows_together(model, ents, ts, values, bounds, old, new, fast)
        for k in np.flatnonzero(~fast & (new.reshape(-1, m).sum(axis=1) > 0)).tolist():
            series = {model.metrics[j]: (ts[a:b], values[a:b]) for j, (a, b) in enumerate(
                zip(bounds[k * m:k * m + m].tolist(), bounds[k * m + 1:k * m + m + 1].tolist()))
                if b > a}
            rows[k] = model.score_station(series, ents[k].state)
        out_k, out_t, out_s = [], [], []
        for k, e in enumerate(ents):
            if size[k * m:k * m + m].sum() == 0:
                continue
            row_ts, new_s = rows.get(k, (np.empty(0, np.int64), np.empty(0)))
            self.scored += row_ts.size
            e.row_ts = np.concatenate((e.row_ts, row_ts))[-int(keep[k]):]
            e.scores = np.concatenate((e.scores, new_s))[-int(keep[k]):]
            e.seen = {metric: (ts[bounds[k * m + j]:bounds[k * m + j + 1]],
                               values[bounds[k * m + j]:bounds[k * m + j + 1]])
                      for j, metric in enumerate(model.metrics)
                      if bounds[k * m + j + 1] > bounds[k * m + j]}
            entries[stations[k]] = e
            out_k.append(np.full(e.row_ts.size, k))
            out_t.append(e.row_ts)
            out_s.append(e.scores)
        if not out_k:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
        return np.concatenate(out_k), np.concatenate(out_t), np.concatenate(out_s)

    def _rows_together(self, model: Any, ents: list[Entry], ts: np.ndarray, values: np.ndarray,
                       bounds: np.ndarray, old: np.ndarray, new: np.ndarray, fast: np.ndarray
                       ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The new readings of the stations in ``fast`` scored in one station_batch pass:
        station index → (row ts, scores)."""
        m = len(model.metrics)
        seg = np.repeat(fast, m) & (new > 0)
        if not seg.any():
            return {}
        live = np.flatnonzero(fast & (new.reshape(-1, m).sum(axis=1) > 0))
        code = np.full(len(ents), -1)
        code[live] = np.arange(live.size)
        pos = ranges(bounds[:-1][seg] + old[seg], new[seg])
        segs = np.flatnonzero(seg)
        k = np.repeat(code[segs // m], new[seg])
        j = np.repeat(segs % m, new[seg])
        rk, rt, scores = score_stations(model, [ents[i].state for i in live.tolist()], k, j,
                                        ts[pos], values[pos])
        cut = np.searchsorted(rk, np.arange(live.size + 1))
        return {int(live[i]): (rt[cut[i]:cut[i + 1]], scores[cut[i]:cut[i + 1]])
                for i in range(live.size)}

    @staticmethod
    def _new_readings(entry: Entry, series: Mapping[str, Series]) -> dict[str, Series] | None:
        """Each metric's readings after the newest scored row, or None when a metric's older
        readings are not the ones scored (a late reading, a changed value)."""
        after = int(entry.row_ts[-1]) if entry.row_ts.size else None
        if after is None:
            return None
        out = {}
        for metric, (t, x) in series.items():
            old = int(np.searchsorted(t, after, side="right"))
            seen_t, seen_x = entry.seen.get(metric, (t[:0], x[:0]))
            if old > seen_t.size or not (
                    np.array_equal(seen_t[seen_t.size - old:], t[:old])
                    and np.array_equal(seen_x[seen_x.size - old:], x[:old], equal_nan=True)):
                return None
            out[metric] = (t[old:], x[old:])
        return out

    def group(self, model: Any, series: Mapping[str, Mapping[str, Series]]) -> Mapping[str, Series]:
        """A group model's scored rows per station (:meth:`GroupScorer.update`)."""
        return self.groups.update(model, series)

    # -- durability --------------------------------------------------------------------------

    def snapshot(self, window: Window | None = None) -> dict[str, Any]:
        """model key → station → the entry as plain values and little-endian bytes; group
        models' entries under ``GROUPS``. With ``window`` ((station, metric) → the engine's
        retained readings, which its checkpoint holds) the rings are left out and only
        their cover is kept (stream_ckpt.py); without it each entry is whole."""
        out: dict[str, Any] = {key: dict(saved) for key, saved in self.pending.items()}
        for key, entries in self.entries.items():
            if "@" in key:  # a model fitted in memory cannot be matched after a restart
                continue
            model = self.models[key]
            rows = bool(getattr(model, "station_level", False))
            metrics = list(model.metrics) if rows else [model.metric]
            out.setdefault(key, {}).update(
                {station: encode_entry(e) if window is None else
                 encode_compact(e, station, metrics, rows, window)
                 for station, e in entries.items()})
        groups = self.groups.snapshot()
        if groups:
            out[GROUPS] = groups
        return out

    def restore(self, snap: Mapping[str, Any] | None, window: Window | None = None) -> None:
        """Keep a :meth:`snapshot` until each model asks for its stations again. The rings
        of a compact entry are taken now from ``window`` (the engine's restored retained
        readings), before new readings move it; an entry whose rings are not found, or
        with no ``window``, rebuilds its station."""
        snap = dict(snap or {})
        self.groups.restore(snap.pop(GROUPS, None))
        self.pending = {key: dict(saved) for key, saved in snap.items()}
        self.rings = {(key, station): attach(saved, station, window)
                      for key, entries in self.pending.items()
                      for station, saved in entries.items() if is_compact(saved)}

    def _claim(self, model: Any, station: str) -> Entry | None:
        key = model_key(model)
        saved = self.pending.get(key, {}).pop(station, None)
        if saved is None:
            return None
        try:
            if is_compact(saved):
                return decode_compact(saved, self.rings.pop((key, station), None),
                                      model.new_state(station))
            return decode_entry(saved, model.new_state(station))
        except (KeyError, TypeError, ValueError):  # another layout: rebuild from the window
            return None


def _continued(rings: Sequence[Series], last: np.ndarray, ts: np.ndarray, v: np.ndarray,
               bounds: np.ndarray, start_ok: bool) -> np.ndarray:
    """Per segment ``ts[bounds[k]:bounds[k + 1]]``: how many readings at its start were
    scored (its readings at or before ``last[k]``, which must be the newest of
    ``rings[k]``), or -1 when they are not the ring's. ``StreamScorer._continues`` (and
    ``_new_readings``) for every segment at once; ``start_ok``: a segment with nothing
    scored yet continues (a station model's metric), else it is -1 (a per-metric one)."""
    n = bounds.size - 1
    seg = np.repeat(np.arange(n), np.diff(bounds))
    old = np.bincount(seg, weights=ts <= last[seg], minlength=n).astype(np.int64)
    length = np.fromiter((r[0].size for r in rings), np.int64, n)
    ok = (old <= length) & (start_ok | (old > 0))
    check = np.flatnonzero(ok & (old > 0))
    if check.size:
        pairs = list(zip(check.tolist(), old[check].tolist()))
        rt = np.concatenate([rings[k][0][length[k] - o:] for k, o in pairs])
        rv = np.concatenate([rings[k][1][length[k] - o:] for k, o in pairs])
        at = ranges(bounds[check], old[check])
        same = (rt == ts[at]) & ((rv == v[at]) | (np.isnan(rv) & np.isnan(v[at])))
        ok[check[np.unique(np.repeat(np.arange(check.size), old[check])[~same])]] = False
    return np.where(ok, old, -1)
