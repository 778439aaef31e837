"""The streaming scorer's entries in a checkpoint: the state and the scores, not the readings.

Why: an entry's ring (the readings a per-metric model scored; a station model's ``seen``)
is the station's retained window, which the engine's checkpoint holds already (rules/series.py
``SeriesStore.snapshot``, delta-coded and byte-transposed). Stored again as raw bytes it made
the worker's checkpoint 3.7 to 5.1 times as large (bench/README.md, "anomaly_checkpoint.py").

So :func:`encode_compact` stores, per ring, a *cover* of the retained window at the snapshot:
how many of its readings the ring had scored (those at or before the newest scored time),
that time, and a digest of those readings (blake2b of their bits); the scores are cut to the
same readings. A per-metric state's own newest readings (``SeriesState.ts``/``v``, the
model's look-back: most of its bytes) are the ring's tail and are left out the same way.
At restore :func:`uncover` finds them again in the restored window. When the window does
not hold exactly those readings (another count, other bits), the entry comes back empty and
the station is rebuilt from its retained window, as a checkpoint without the state always
was. Once restored, the ring is compared with every later window, as any ring is (stream.py
``_continues``).

:func:`encode_entry` / :func:`decode_entry` keep a whole entry, rings included: the layout of
checkpoints written before (still read) and of a snapshot taken without the window.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from yujing.models.stream_base import NONE_SCORED, Series, array_bytes, array_of

Window = Callable[[str, str], "Series | None"]  # (station, metric) → its retained readings


@dataclasses.dataclass
class Entry:
    """One station of one model: its streaming state and its scored readings (or rows)."""

    state: Any
    ts: np.ndarray  # scored readings (a per-metric model) or the newest reading per metric
    v: np.ndarray
    scores: np.ndarray
    row_ts: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, np.int64))
    seen: dict[str, Series] = dataclasses.field(default_factory=dict)  # station models


def empty_entry(state: Any) -> Entry:
    """An entry with nothing scored: its first window rebuilds the station (``rebuilt``)."""
    return Entry(state, np.empty(0, np.int64), np.empty(0), np.empty(0))


def digest(ts: np.ndarray, v: np.ndarray) -> bytes:
    """16 bytes naming readings bit for bit, little-endian so that any machine reads the
    same. Bit for bit, not as the rings compare values (NaN = NaN, -0.0 = 0.0): the state's
    own readings are taken back from the window too, so any other bits rebuild instead."""
    h = hashlib.blake2b(np.ascontiguousarray(ts, "<i8").tobytes(), digest_size=16)
    h.update(np.ascontiguousarray(v, "<f8").tobytes())
    return h.digest()


def cover(ring: Series, window: Series | None, last: int) -> dict[str, Any]:
    """The ring's readings still in ``window`` (those at or before ``last``, the newest time
    scored) as count, ``last`` and digest; a window holding more of them than the ring
    (a reading merged in since) gets a digest that never matches."""
    n = 0 if window is None else int(np.searchsorted(window[0], last, side="right"))
    size = ring[0].size
    mark = digest(ring[0][size - n:], ring[1][size - n:]) if n <= size else b""
    return {"n": n, "last": int(last), "digest": mark}


def uncover(c: Mapping[str, Any], window: Series | None) -> Series | None:
    """The readings of ``window`` that :func:`cover` named, or None when they are not there."""
    t, x = (np.empty(0, np.int64), np.empty(0)) if window is None else window
    n = int(np.searchsorted(t, int(c["last"]), side="right"))
    if n != int(c["n"]) or digest(t[:n], x[:n]) != bytes(c["digest"]):
        return None
    return np.array(t[:n], np.int64), np.array(x[:n], np.float64)


TAIL = ("ts", "v")  # a SeriesState's newest readings (models/base.py): the ring's own tail


def _state_values(state: Any, skip: Sequence[str] = ()) -> dict[str, Any]:
    return {f.name: (array_bytes(getattr(state, f.name))
                     if isinstance(getattr(state, f.name), np.ndarray)
                     else getattr(state, f.name)) for f in dataclasses.fields(state)
            if f.name not in skip}


def _tail(state: Any, ring: Series, covered: int) -> int | None:
    """How many of the ring's newest readings the state's own ``ts`` and ``v`` are (a
    per-metric state keeps the newest ``history`` it scored), when all of them are among
    the ``covered`` ones; else None (the state keeps its arrays)."""
    t, x = (getattr(state, name, None) for name in TAIL)
    if not (isinstance(t, np.ndarray) and isinstance(x, np.ndarray) and t.ndim == 1
            and t.shape == x.shape and t.size <= min(covered, ring[0].size)):
        return None
    a = ring[0].size - t.size  # the same bits (else the state keeps its arrays: still exact)
    same = ring[0][a:].tobytes() == t.tobytes() and ring[1][a:].tobytes() == x.tobytes()
    return t.size if same and t.dtype == ring[0].dtype and x.dtype == ring[1].dtype else None


def _load_state(d: Mapping[str, Any], blank: Any, left: Sequence[str] = ()) -> None:
    """The saved state onto ``blank`` (but the fields ``left`` out of it); a state of another
    type or field set is refused (TypeError)."""
    names = {f.name for f in dataclasses.fields(blank)}
    if d["type"] != type(blank).__name__ or set(d["state"]) | set(left) != names \
            or set(d["state"]) & set(left):
        raise TypeError("another state layout")
    for name, value in d["state"].items():
        setattr(blank, name, array_of(value) if isinstance(value, dict) else value)


def encode_entry(e: Entry) -> dict[str, Any]:
    """The whole entry, rings included (the layout before the compact one)."""
    return {"type": type(e.state).__name__, "state": _state_values(e.state),
            "ts": array_bytes(e.ts), "v": array_bytes(e.v), "scores": array_bytes(e.scores),
            "row_ts": array_bytes(e.row_ts),
            "seen": {m: [array_bytes(t), array_bytes(x)] for m, (t, x) in e.seen.items()}}


def decode_entry(d: Mapping[str, Any], blank: Any) -> Entry:
    """An entry from :func:`encode_entry` onto ``blank`` (the model's new state of the
    station): a state of another type or field set is refused (TypeError)."""
    _load_state(d, blank)
    return Entry(blank, array_of(d["ts"]), array_of(d["v"]), array_of(d["scores"]),
                 array_of(d["row_ts"]),
                 {m: (array_of(t), array_of(x)) for m, (t, x) in d["seen"].items()})


def encode_compact(e: Entry, station: str, metrics: Sequence[str], station_rows: bool,
                   window: Window) -> dict[str, Any]:
    """The entry without its rings: state, scores, row times and a :func:`cover` of each
    metric's retained window. ``station_rows``: a station model (rings per metric, scored
    up to its newest row); else one metric's ring, whose scores are cut to the cover, and
    whose state's own newest readings are left out too when they are the ring's (``tail``:
    how many)."""
    tail = None
    if station_rows:
        last = int(e.row_ts[-1]) if e.row_ts.size else NONE_SCORED
        empty = (np.empty(0, np.int64), np.empty(0))
        rings = {m: cover(e.seen.get(m, empty), window(station, m), last) for m in metrics}
        scores = e.scores
    else:
        last = int(e.ts[-1]) if e.ts.size else NONE_SCORED
        rings = {metrics[0]: cover((e.ts, e.v), window(station, metrics[0]), last)}
        n = min(rings[metrics[0]]["n"], e.scores.size)
        scores = e.scores[e.scores.size - n:]
        tail = _tail(e.state, (e.ts, e.v), rings[metrics[0]]["n"])
    out = {"type": type(e.state).__name__,
           "state": _state_values(e.state, TAIL if tail is not None else ()),
           "scores": array_bytes(scores), "row_ts": array_bytes(e.row_ts),
           "station_rows": station_rows, "rings": rings}
    if tail is not None:
        out["tail"] = tail
    return out


def is_compact(d: Any) -> bool:
    return isinstance(d, Mapping) and "rings" in d


def attach(d: Mapping[str, Any], station: str, window: Window | None
           ) -> dict[str, Series] | None:
    """metric → the ring :func:`encode_compact` covered, from the retained ``window`` (at
    restore: the engine's restored readings), or None when any is not there (or the cover
    is not one: a restarting worker rebuilds that station rather than stop)."""
    if window is None:
        return None
    rings = {}
    try:
        for metric, c in d["rings"].items():
            ring = uncover(c, window(station, metric))
            if ring is None:
                return None
            rings[metric] = ring
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return rings


def decode_compact(d: Mapping[str, Any], rings: Mapping[str, Series] | None, blank: Any
                   ) -> Entry:
    """An entry from :func:`encode_compact` and its rings from :func:`attach` onto ``blank``;
    without rings (not found again) an empty entry, which rebuilds the station."""
    scores, row_ts, tail = array_of(d["scores"]), array_of(d["row_ts"]), d.get("tail")
    if rings is None or not d["station_rows"] and (
            len(rings) != 1 or not 0 < next(iter(rings.values()))[0].size == scores.size
            or tail is not None and not 0 <= int(tail) <= scores.size):
        return empty_entry(blank)
    _load_state(d, blank, TAIL if tail is not None else ())
    if d["station_rows"]:
        seen = {m: r for m, r in rings.items() if r[0].size}
        return Entry(blank, np.empty(0, np.int64), np.empty(0), scores, row_ts, seen)
    (ts, v), = rings.values()
    if tail is not None:
        blank.ts, blank.v = ts[ts.size - int(tail):].copy(), v[v.size - int(tail):].copy()
    return Entry(blank, ts, v, scores, row_ts)
