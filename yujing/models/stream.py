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

Durability: :meth:`snapshot` gives plain values and little-endian bytes (states, rings)
that the engine checkpoints with its own state; :meth:`restore` keeps them until the
same model (the sha256 of its signed payload) asks for that station again. A checkpoint
without them, or a model that changed, simply rebuilds from the retained readings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from yujing.models.base import Detector

Series = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass
class Entry:
    """One station of one model: its streaming state and its scored readings (or rows)."""

    state: Any
    ts: np.ndarray  # scored readings (a per-metric model) or the newest reading per metric
    v: np.ndarray
    scores: np.ndarray
    row_ts: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, np.int64))
    seen: dict[str, Series] = dataclasses.field(default_factory=dict)  # station models


def model_key(model: Any) -> str:
    """What a checkpointed state belongs to: the signed payload's sha256 (the same model
    after a restart), else the object (a model fitted in memory)."""
    sha = (getattr(model, "meta", None) or {}).get("sha256")
    return f"{model.kind}:{sha}" if sha else f"{model.kind}@{id(model)}"


class StreamScorer:
    """A ``Scorer`` for the rule engine (``(model, ts, values, station)`` → scores of the
    whole series) that streams; :meth:`station` does the same for station models."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {}  # model key → station → entry
        self.models: dict[str, Any] = {}  # model key → the model object it was built with
        self.pending: dict[str, dict[str, Any]] = {}  # restored, not yet claimed
        self.scored = 0  # readings (rows) the models scored: for tests and figures
        self.rebuilt = 0  # stations scored again from their retained window

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

    # -- durability --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """model key → station → the entry as plain values and little-endian bytes."""
        out: dict[str, Any] = {key: dict(saved) for key, saved in self.pending.items()}
        for key, entries in self.entries.items():
            if "@" in key:  # a model fitted in memory cannot be matched after a restart
                continue
            out.setdefault(key, {}).update({station: encode_entry(e)
                                            for station, e in entries.items()})
        return out

    def restore(self, snap: Mapping[str, Any] | None) -> None:
        """Keep a :meth:`snapshot` until each model asks for its stations again."""
        self.pending = {key: dict(saved) for key, saved in (snap or {}).items()}

    def _claim(self, model: Any, station: str) -> Entry | None:
        saved = self.pending.get(model_key(model), {}).pop(station, None)
        if saved is None:
            return None
        try:
            return decode_entry(saved, model.new_state(station))
        except (KeyError, TypeError, ValueError):  # another layout: rebuild from the window
            return None


def _array(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape),
            "data": a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()}


def _from(d: Mapping[str, Any]) -> np.ndarray:
    return np.frombuffer(d["data"], dtype=np.dtype(d["dtype"])).reshape(d["shape"]).astype(
        np.dtype(d["dtype"]).newbyteorder("="))


def encode_entry(e: Entry) -> dict[str, Any]:
    state = {f.name: (_array(getattr(e.state, f.name))
                      if isinstance(getattr(e.state, f.name), np.ndarray)
                      else getattr(e.state, f.name)) for f in dataclasses.fields(e.state)}
    return {"type": type(e.state).__name__, "state": state, "ts": _array(e.ts),
            "v": _array(e.v), "scores": _array(e.scores), "row_ts": _array(e.row_ts),
            "seen": {m: [_array(t), _array(x)] for m, (t, x) in e.seen.items()}}


def decode_entry(d: Mapping[str, Any], blank: Any) -> Entry:
    """An entry from :func:`encode_entry` onto ``blank`` (the model's new state of the
    station): a state of another type or field set is refused (TypeError)."""
    names = {f.name for f in dataclasses.fields(blank)}
    if d["type"] != type(blank).__name__ or set(d["state"]) != names:
        raise TypeError("another state layout")
    for name, value in d["state"].items():
        setattr(blank, name, _from(value) if isinstance(value, dict) else value)
    return Entry(blank, _from(d["ts"]), _from(d["v"]), _from(d["scores"]), _from(d["row_ts"]),
                 {m: (_from(t), _from(x)) for m, (t, x) in d["seen"].items()})
