"""The series store: each (station, metric) series' recent readings, keyed by their own
timestamps, so replaying a reading changes nothing.

Stations and metrics get small integer ids as they appear (the engine's arrays
are indexed by them). A reading more than ``lateness_ms`` behind the newest
reading that arrived before it in its series is late: it is reported, never
merged silently. After a chunk each touched series is trimmed to its horizon
(the longest window of the rules that read it, plus the lateness), and to at
least the readings an anomaly model looks back on.

Each series lives in its own append-only buffer (``buffer.py``), so a chunk costs
in proportion to its readings, not to the windows the series keep: new readings
are appended, trimming moves an offset, and the windows are computed on the
slice of each series the chunk's points can read (``reach.py``), laid end to end
without sorting anything already stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from yujing.rules import windows as wn
from yujing.rules.arrays import NONE, Grow, from_bytes, shuffle, to_bytes, unshuffle
from yujing.rules.buffer import Buffer
from yujing.rules.reach import WHOLE, Reach


@dataclass(frozen=True)
class SeriesView:
    ts: np.ndarray
    v: np.ndarray


class SeriesStore:
    """``horizon(station, metric)`` says how far back (ms, lateness not included) the
    rules need that series; ``keep_points`` maps a metric to the readings to keep."""

    def __init__(self, lateness_ms: int, horizon: Callable[[str, str], int]) -> None:
        self.lateness_ms = lateness_ms
        self.horizon = horizon
        self.keep_points: dict[str, int] = {}
        self.station_index: dict[str, int] = {}
        self.station_names: list[str] = []
        self.metric_index: dict[str, int] = {}
        self.metric_names: list[str] = []
        self._buf: list[Buffer] = []
        self._station_of = Grow(-1, np.int64)  # series id -> station id
        self.metric_of: list[int] = []
        self.horizon_of: list[int] = []  # window kept: the longest rule on that station
        self._sid = np.full((64, 8), -1, dtype=np.int64)
        self.newest = Grow(NONE, np.int64)
        self.watermark = 0  # newest event time accepted (the engine moves it)

    # -- identities -------------------------------------------------------------------------

    def station(self, name: str) -> tuple[int, bool]:
        """The station's id, and whether it is new."""
        i = self.station_index.get(name)
        if i is not None:
            return i, False
        i = self.station_index[name] = len(self.station_names)
        self.station_names.append(name)
        return i, True

    def metric(self, name: str) -> tuple[int, bool]:
        """The metric's id, and whether it is new."""
        i = self.metric_index.get(name)
        if i is not None:
            return i, False
        i = self.metric_index[name] = len(self.metric_names)
        self.metric_names.append(name)
        return i, True

    def ids(self, st: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Series ids of (station, metric) pairs; new series start empty."""
        rows, cols = self._sid.shape
        if st.size and (st.max() >= rows or m.max() >= cols):
            grown = np.full((max(rows, int(st.max()) + 1) * 2, max(cols, int(m.max()) + 1) * 2),
                            -1, dtype=np.int64)
            grown[:rows, :cols] = self._sid
            self._sid = grown
        sid = self._sid[st, m]
        missing = sid < 0
        if missing.any():
            for s, mm in np.unique(np.stack((st[missing], m[missing]), axis=1), axis=0).tolist():
                self._sid[s, mm] = len(self._buf)
                self._station_of.ensure(len(self._buf) + 1)[len(self._buf)] = s
                self._buf.append(Buffer())
                self.metric_of.append(mm)
                self.horizon_of.append(self._horizon_for(s, mm))
            self.newest.ensure(len(self._buf))
            sid = self._sid[st, m]
        return sid

    def station_of(self, sid: np.ndarray) -> np.ndarray:
        """The station id of each series id."""
        return self._station_of.a[sid]

    @property
    def ts(self) -> list[np.ndarray]:
        """Each series' retained timestamps (views, valid until the next chunk)."""
        return [b.views()[0] for b in self._buf]

    @property
    def v(self) -> list[np.ndarray]:
        return [b.views()[1] for b in self._buf]

    def __len__(self) -> int:
        return len(self._buf)

    def series(self, sid: int) -> tuple[np.ndarray, np.ndarray]:
        """One series' retained (timestamps, values) (views, valid until the next chunk)."""
        return self._buf[sid].views()

    def window(self, station: str, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
        """One series' retained (timestamps, values) by name (views, valid until the next
        chunk), or None: what the anomaly scorer's checkpoint leaves to this store's."""
        st, m = self.station_index.get(station), self.metric_index.get(metric)
        if st is None or m is None or st >= self._sid.shape[0] or m >= self._sid.shape[1]:
            return None
        sid = int(self._sid[st, m])
        return self._buf[sid].views() if sid >= 0 else None

    def lookup(self, st: np.ndarray, metric: str) -> np.ndarray:
        """Series ids of ``metric`` at stations ``st``; -1 where there is none."""
        m = self.metric_index.get(metric)
        if m is None or m >= self._sid.shape[1]:
            return np.full(st.shape, -1, dtype=np.int64)
        return np.where(st < self._sid.shape[0], self._sid[np.minimum(st, self._sid.shape[0] - 1), m], -1)

    def _horizon_for(self, st: int, m: int) -> int:
        return self.horizon(self.station_names[st], self.metric_names[m]) + self.lateness_ms

    def recompute_horizons(self) -> None:
        """After the rules' view of the stations changed (registry, models)."""
        rows, cols = self._sid.shape
        for st in range(min(rows, len(self.station_names))):
            for m in range(min(cols, len(self.metric_names))):
                sid = int(self._sid[st, m])
                if sid >= 0:
                    self.horizon_of[sid] = self._horizon_for(st, m)

    def views(self) -> dict[tuple[str, str], SeriesView]:
        """(station, metric) → the retained window of that series."""
        out = {}
        rows, cols = self._sid.shape
        for st, name in enumerate(self.station_names):
            for mi, metric in enumerate(self.metric_names):
                if st < rows and mi < cols and self._sid[st, mi] >= 0:
                    s = int(self._sid[st, mi])
                    out[(name, metric)] = SeriesView(*self._buf[s].views())
        return out

    # -- a chunk ----------------------------------------------------------------------------

    def on_time(self, sid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Which readings are not late, judged in arrival order against what arrived
        before in the series (earlier chunks and earlier in this one). Marks the
        accepted ones as seen."""
        order = np.argsort(sid, kind="stable")
        s_sorted, t_sorted = sid[order], t[order]
        running = np.maximum.accumulate(wn.keys(s_sorted, t_sorted)) - s_sorted * wn.SPAN + wn.EPOCH
        newest = self.newest.ensure(len(self._buf))
        seen = np.maximum(running, newest[s_sorted])
        ok_sorted = t_sorted >= seen - self.lateness_ms
        ok = np.zeros(sid.size, dtype=bool)
        ok[order[ok_sorted]] = True
        np.maximum.at(newest, sid[ok], t[ok])
        return ok

    def insert(self, sid: np.ndarray, t: np.ndarray, val: np.ndarray) -> np.ndarray:
        """Add accepted readings (arrival order; the last to arrive wins a timestamp) to
        their series; returns the touched series ids, sorted. A series' readings that
        all come after its newest one are appended (the live case: work in proportion
        to the new readings); an older or repeated timestamp merges that series alone."""
        if not sid.size:
            return np.empty(0, np.int64)
        order = np.lexsort((np.arange(sid.size), t, sid))
        sid, t, val = sid[order], t[order], val[order]
        last = np.ones(sid.size, dtype=bool)
        last[:-1] = (sid[1:] != sid[:-1]) | (t[1:] != t[:-1])
        sid, t, val = sid[last], t[last], val[last]
        cut = np.flatnonzero(np.diff(sid)) + 1
        touched = sid[np.concatenate(([0], cut))]
        bounds = np.concatenate(([0], cut, [sid.size])).tolist()
        for i, s in enumerate(touched.tolist()):
            self._buf[s].add(t[bounds[i]:bounds[i + 1]], val[bounds[i]:bounds[i + 1]])
        return touched

    def flat(self, needed: np.ndarray, t_min: np.ndarray, reach: dict[str, Reach]) -> wn.Flat:
        """The readings of the ``needed`` series (sorted ids) a chunk's points can read,
        laid out for the windows: for each series from the start of the longest window
        of its metric before its earliest point ``t_min`` (and at least the readings the
        rules need at or before it), to its newest reading. Stored series are sorted
        and unique already: nothing is sorted here."""
        parts_ts, parts_v, lens = [], [], []
        by_metric = [reach.get(name) for name in self.metric_names]
        for s, t0 in zip(needed.tolist(), t_min.tolist()):
            ts, v = self._buf[s].views()
            r = by_metric[self.metric_of[s]]
            if r is not None and r.ms != WHOLE and ts.size and ts[0] <= t0 - r.ms:
                a = int(ts.searchsorted(t0 - r.ms, side="right"))
                b = int(ts.searchsorted(t0, side="right"))
                a = max(0, min(a, b - r.readings))
                ts, v = ts[a:], v[a:]
            parts_ts.append(ts)
            parts_v.append(v)
            lens.append(ts.size)
        if not parts_ts:
            return wn.Flat(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
        return wn.Flat(np.repeat(needed, lens), np.concatenate(parts_ts), np.concatenate(parts_v))

    def days_since(self, sid: np.ndarray, t: np.ndarray, threshold: float,
                   horizon_ms: int) -> np.ndarray:
        """``days_since``: whole days from each point ``(sid, t)`` back to the newest reading
        of its series at or before ``t`` with a value >= ``threshold``, capped at the
        horizon (no such reading: the cap); NaN where the series has no reading at or
        before ``t``. Read from the retained series itself, not from the chunk's flat
        layout: the horizon (ten days of rain for the fire-danger rule) would otherwise lay
        out that whole history at every envelope (bench/history_cost.py). The series is
        retained for at least the horizon, and an older wet reading is beyond the cap."""
        cap = horizon_ms // wn.DAY_MS
        out = np.full(t.shape, np.nan)
        for s in np.unique(sid[sid >= 0]).tolist():
            at = np.flatnonzero(sid == s)
            ts, v = self._buf[s].views()
            tp = t[at]
            upto = ts.searchsorted(tp, side="right")          # readings at or before each point
            wet = np.flatnonzero(v >= threshold)
            k = wet.searchsorted(upto, side="left") - 1        # the newest wet one before upto
            days = np.where(k >= 0, (tp - ts[wet[np.maximum(k, 0)]]) // wn.DAY_MS, cap) \
                if wet.size else np.full(tp.shape, cap)
            out[at] = np.where(upto > 0, np.minimum(days, cap), np.nan)
        return out

    def trim(self, touched: np.ndarray) -> None:
        """Keep each touched series' readings within its horizon of its newest reading."""
        newest = self.newest.a[touched]
        for s, top in zip(touched.tolist(), newest.tolist()):
            keep = self.keep_points.get(self.metric_names[self.metric_of[s]], 1) \
                if self.keep_points else 0
            self._buf[s].trim(max(top - self.horizon_of[s], wn.EPOCH), keep)

    # -- snapshot ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The series as plain values and little-endian bytes. Timestamps are stored as
        deltas and both big columns byte-transposed: regular series then compress to
        almost nothing."""
        n = len(self._buf)
        rows, cols = np.nonzero(self._sid >= 0)
        sid = self._sid[rows, cols]
        st = np.empty(n, np.int64)
        st[sid] = rows
        lens = np.fromiter((a.size for a in self.ts), np.int64, n)
        ts = np.concatenate(self.ts) if n else np.empty(0, np.int64)
        v = np.concatenate(self.v) if n else np.empty(0, np.float64)
        return {
            "stations": list(self.station_names), "metrics": list(self.metric_names),
            "series_station": to_bytes(st),
            "series_metric": to_bytes(np.asarray(self.metric_of, np.int64)),
            "lens": to_bytes(lens), "ts_delta": shuffle(np.diff(ts, prepend=np.int64(0))),
            "v": shuffle(v), "newest": to_bytes(self.newest.ensure(n)[:n]),
            "watermark": int(self.watermark),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Load the series of a :meth:`snapshot`; stations and metrics must be registered
        already (``station``/``metric`` in the snapshot's order)."""
        st = from_bytes(snap["series_station"], np.int64)
        m = from_bytes(snap["series_metric"], np.int64)
        lens = from_bytes(snap["lens"], np.int64)
        n = int(st.size)
        self._sid = np.full((max(64, len(self.station_names) * 2),
                             max(8, len(self.metric_names) * 2)), -1, dtype=np.int64)
        self._sid[st, m] = np.arange(n, dtype=np.int64)
        ts = np.cumsum(unshuffle(snap["ts_delta"], np.int64))
        v = unshuffle(snap["v"], np.float64)
        bounds = np.cumsum(lens)[:-1]
        self._buf = [Buffer(a, b) for a, b in zip(np.split(ts, bounds), np.split(v, bounds))] \
            if n else []
        self.metric_of = m.tolist()
        self._station_of.ensure(n)[:n] = st
        self.horizon_of = [self._horizon_for(s, mm) for s, mm in zip(st.tolist(), m.tolist())]
        self.newest.ensure(n)[:n] = from_bytes(snap["newest"], np.int64)
        self.watermark = int(snap["watermark"])
