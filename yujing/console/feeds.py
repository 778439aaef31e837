"""What the console keeps from Kafka besides incidents: recent readings, events, dead letters.

Readings come from ``yujing.readings`` itself (every gateway's, not only this
one's), read without a consumer group (``Bus.tail``, bus.py). The window keeps
whole decoded batch envelopes (numpy views, no per-reading Python work: DESIGN's
hot-path rule) up to ``max_readings`` readings and ``keep_ms`` of receive time; a
chart asks for one station and the envelopes are masked then. Memory is about 24 bytes a
reading (1,000,000 readings ≈ 24 MB). A gateway restart starts with what the
topic still holds near its end, so a chart may be short right after a restart.

Events: the detail records of camera detections and industrial events (bounding box,
image link, free detail) from ``yujing.events``, the newest ``per_station`` of each station,
for the warning page of a warning those events raised.

Dead letters: the newest ``size`` records of ``yujing.deadletter``.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import numpy as np
import orjson

from yujing.envelope import Columns, decode

log = logging.getLogger("yujing.console")


class ReadingsWindow:
    def __init__(self, max_readings: int = 1_000_000, keep_ms: int = 86_400_000) -> None:
        self.max_readings = max_readings
        self.keep_ms = keep_ms
        self.envelopes: deque[tuple[int, Columns]] = deque()
        self.count = 0
        self.latest_ms = 0          # receive time of the newest envelope
        self.added = 0              # envelopes ever added: a cached answer is current while equal
        self._cached: dict[str, tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}

    def add(self, cols: Columns, now_ms: int) -> None:
        if self.max_readings <= 0 or not len(cols):
            return
        self.envelopes.append((now_ms, cols))
        self.added += 1
        self.count += len(cols)
        self.latest_ms = now_ms
        while self.envelopes and (self.count > self.max_readings
                                  or self.envelopes[0][0] < now_ms - self.keep_ms):
            _, old = self.envelopes.popleft()
            self.count -= len(old)

    def add_payload(self, payload: bytes, now_ms: int) -> bool:
        try:
            self.add(decode(payload), now_ms)
        except ValueError as exc:
            log.warning("console: readings record skipped: %s", exc)
            return False
        return True

    def series(self, station: str, t0: int | None = None, t1: int | None = None
               ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per metric: event times and values of ``station`` (sorted; a repeated ts keeps
        the value received last, as the worker's idempotent slots do)."""
        parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for _, c in self.envelopes:
            try:
                si = c.stations.index(station)
            except ValueError:
                continue
            mask = c.si == si
            if t0 is not None:
                mask &= c.ts >= t0
            if t1 is not None:
                mask &= c.ts <= t1
            if not mask.any():
                continue
            mi, ts, val = c.mi[mask], c.ts[mask], c.val[mask]
            for k, metric in enumerate(c.metrics):
                sel = mi == k
                if sel.any():
                    parts.setdefault(metric, []).append((ts[sel], val[sel]))
        return {metric: _last_wins(chunks) for metric, chunks in parts.items()}

    def metric_series(self, metric: str, t0: int | None = None
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per station: event times and values of one ``metric`` from ``t0`` (sorted, a repeated
        ts keeps the value received last). The storm view asks for every rain gauge at once,
        so this is one pass of array work over the envelopes, not one per station; the whole
        window's answer is kept until an envelope arrives (every open storm page shares it)."""
        if t0 is None and metric in self._cached and self._cached[metric][0] == self.added:
            return self._cached[metric][1]
        out = self._metric_series(metric, t0)
        if t0 is None:
            self._cached[metric] = (self.added, out)
        return out

    def _metric_series(self, metric: str, t0: int | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        ids: dict[str, int] = {}
        gsi, tss, vals = [], [], []
        for _, c in self.envelopes:
            try:
                mi = c.metrics.index(metric)
            except ValueError:
                continue
            mask = c.mi == mi
            if t0 is not None:
                mask &= c.ts >= t0
            if not mask.any():
                continue
            lut = np.array([ids.setdefault(st, len(ids)) for st in c.stations], dtype=np.int64)
            gsi.append(lut[c.si[mask]])
            tss.append(c.ts[mask])
            vals.append(c.val[mask])
        if not gsi:
            return {}
        g, ts, val = np.concatenate(gsi), np.concatenate(tss), np.concatenate(vals)
        order = np.lexsort((np.arange(g.size), ts, g))       # by station, ts, then arrival
        g, ts, val = g[order], ts[order], val[order]
        last = np.ones(g.size, dtype=bool)                    # the last arrival of a (station, ts)
        last[:-1] = (g[1:] != g[:-1]) | (ts[1:] != ts[:-1])
        g, ts, val = g[last], ts[last], val[last]
        cuts = np.flatnonzero(np.diff(g)) + 1
        names = {i: st for st, i in ids.items()}
        return {names[int(gs[0])]: (t, v) for gs, t, v in
                zip(np.split(g, cuts), np.split(ts, cuts), np.split(val, cuts))}

    def latest(self, station: str) -> dict[str, tuple[int, float]]:
        """Newest reading per metric of ``station`` (by event time)."""
        out = {}
        for metric, (ts, val) in self.series(station).items():
            out[metric] = (int(ts[-1]), float(val[-1]))
        return out

    def stations_seen(self) -> dict[str, int]:
        """Station → newest receive time among kept envelopes."""
        seen: dict[str, int] = {}
        for recv, c in self.envelopes:
            for s in c.stations:
                seen[s] = recv
        return seen


def _last_wins(chunks: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One sorted series from chunks in arrival order; of a repeated ts the last value wins."""
    ts = np.concatenate([t for t, _ in chunks])
    val = np.concatenate([v for _, v in chunks])
    # last occurrence of each ts wins: reverse, unique keeps the first
    rts, rval = ts[::-1], val[::-1]
    uniq, first = np.unique(rts, return_index=True)
    return uniq, rval[first]


class EventRing:
    """The newest event detail records per station (``yujing.events``), for the warning page."""

    def __init__(self, per_station: int = 50, max_stations: int = 10_000) -> None:
        self.per_station = per_station
        self.max_stations = max_stations
        self.by_station: dict[str, deque[dict[str, Any]]] = {}
        self.seen = 0

    def add_payload(self, payload: bytes | None) -> bool:
        if payload is None:
            return False
        try:
            d = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("console: undecodable event record skipped")
            return False
        if not isinstance(d, dict) or not isinstance(d.get("station"), str) \
                or not isinstance(d.get("ts"), int):
            log.warning("console: event record without station or ts skipped")
            return False
        ring = self.by_station.get(d["station"])
        if ring is None:
            if len(self.by_station) >= self.max_stations:   # the oldest station makes room
                self.by_station.pop(next(iter(self.by_station)))
            ring = self.by_station[d["station"]] = deque(maxlen=self.per_station)
        ring.append(d)
        self.seen += 1
        return True

    def find(self, station: str, types: list[str] | None, t0: int, t1: int | None = None,
             limit: int = 20) -> list[dict[str, Any]]:
        """Events at ``station`` of ``types`` (None: any) with ``t0 <= ts <= t1``, newest first."""
        out = [d for d in self.by_station.get(station, ())
               if (types is None or d.get("type") in types) and d["ts"] >= t0
               and (t1 is None or d["ts"] <= t1)]
        out.sort(key=lambda d: -d["ts"])
        return out[:limit]


class DeadLetterRing:
    def __init__(self, size: int = 200) -> None:
        self.items: deque[dict[str, Any]] = deque(maxlen=size)
        self.seen = 0

    def add_payload(self, payload: bytes | None) -> None:
        if payload is None:
            return
        try:
            d = orjson.loads(payload)
        except orjson.JSONDecodeError:
            d = {"reason": "not a dead-letter record", "code": "?",
                 "raw": payload[:200].decode("utf-8", "replace")}
        if not isinstance(d, dict):
            d = {"reason": "not a dead-letter record", "code": "?", "raw": str(d)[:200]}
        self.items.append(d)
        self.seen += 1

    def by_reason(self) -> list[dict[str, Any]]:
        counts: dict[str, dict[str, Any]] = {}
        for d in self.items:
            code = str(d.get("code") or "?")
            c = counts.setdefault(code, {"code": code, "count": 0, "last_ms": 0, "reason": ""})
            c["count"] += 1
            if (d.get("received_ms") or 0) >= c["last_ms"]:
                c["last_ms"] = d.get("received_ms") or 0
                c["reason"] = str(d.get("reason") or "")
        return sorted(counts.values(), key=lambda c: -c["count"])

    def latest(self, n: int = 20) -> list[dict[str, Any]]:
        out = list(self.items)[-n:]
        out.reverse()
        for d in out:
            raw = d.get("raw")
            if not isinstance(raw, str):
                d["raw"] = orjson.dumps(raw).decode() if raw is not None else ""
        return out
