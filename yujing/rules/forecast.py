"""The forecast table: per (station, metric) the newest forecast value of each valid time,
and the look-ahead aggregates of the rules, ``sum_ahead()`` and ``max_ahead()``.

A forecast issue (a QPF run, a hydrological model's run) gives values at valid times.
For one valid time the value of the newest *issue* counts: a later issue replaces an
earlier one there, and an earlier issue that arrives late (a retry, a replay) changes
nothing. Valid times an issue does not name keep what older issues said. The same
issue and valid time again: the value that came last wins (a correction).

"Newest" is as of the evaluation point: the look-ahead at (station, t) reads the valid
times in (t, t + W], each with the newest issue out at t (issued <= t). So readings
earlier than an issue, judged in the same chunk, do not see it, and the outcome does
not depend on how readings were cut into envelopes. A window that holds no forecast
value is NaN ("no forecast"), which fails every comparison: a rule reads
``default(sum_ahead(rain_mm_fcst, 3h), 0)`` to take a missing forecast as no rain.

Values valid, or replaced by a newer issue, more than the lateness behind the stream's
newest event time can no longer be read by any point and are dropped
(:meth:`ForecastTable.expire`).

Pure: no I/O, time passed in. The engine snapshots the table with its series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FORECAST_SUFFIX = "_fcst"
AHEAD_FNS = ("sum_ahead", "max_ahead")
EXPIRY_STEP_MS = 300_000  # a sweep per 5 minutes of stream time, not per envelope


@dataclass(frozen=True)
class _Flat:
    rows: dict[str, int]        # station -> its row
    starts: np.ndarray          # per row: first entry
    lens: np.ndarray            # per row: entries
    valid: np.ndarray           # per entry, sorted by (station, valid, issued)
    issued: np.ndarray
    value: np.ndarray
    same_next: np.ndarray       # the next entry is the same station's and valid time's


class ForecastTable:
    def __init__(self) -> None:
        # (station, metric) -> (valid ms, issued ms) -> value
        self._rows: dict[tuple[str, str], dict[tuple[int, int], float]] = {}
        self._cache: dict[str, _Flat] = {}  # metric -> its values laid out for ahead()
        self._swept_to = -1  # the cut of the last sweep
        self._row_maps: dict[str, tuple[int, np.ndarray]] = {}  # metric -> (stations, rows)

    def __len__(self) -> int:
        return sum(len(r) for r in self._rows.values())

    def add(self, station: str, metric: str, issued: int, valid: int, value: float) -> None:
        """Take one forecast value. Issues are kept side by side until :meth:`expire`: a
        point reads, for each valid time, the newest issue out at its own time."""
        key = (station, metric)
        self._rows.setdefault(key, {})[(valid, issued)] = value
        self._forget(metric)

    def add_columns(self, stations: list[str], si: np.ndarray, metrics: list[str],
                    mi: np.ndarray, issued: np.ndarray, valid: np.ndarray, val: np.ndarray,
                    wanted: set[str]) -> int:
        """Take the forecast rows of an envelope whose metric a rule reads (``wanted``);
        returns how many were taken."""
        taken = 0
        for s, m, i, t, v in zip(si.tolist(), mi.tolist(), issued.tolist(), valid.tolist(),
                                 val.tolist(), strict=True):
            if metrics[m] in wanted:
                self.add(stations[s], metrics[m], i, t, v)
                taken += 1
        return taken

    def expire(self, before_ms: int, step_ms: int = 0) -> int:
        """Drop what no point at or after ``before_ms`` can read: values valid by then, and
        values of an issue replaced by a newer one out by then. Returns how many. With
        ``step_ms`` the sweep is skipped until the cut has moved that far (the engine calls
        this per envelope; what stays a while longer is never read: points look ahead)."""
        if not self._rows or (step_ms and before_ms < self._swept_to + step_ms):
            return 0
        self._swept_to = before_ms
        dropped = 0
        for key in list(self._rows):
            rows = self._rows[key]
            newest: dict[int, int] = {}
            for valid, issued in rows:
                if issued <= before_ms and issued > newest.get(valid, -1):
                    newest[valid] = issued
            old = [k for k in rows if k[0] <= before_ms or k[1] < newest.get(k[0], -1)]
            for k in old:
                del rows[k]
            if old:
                dropped += len(old)
                self._forget(key[1])
            if not rows:
                del self._rows[key]
        return dropped

    def current(self, station: str, metric: str, at_ms: int) -> dict[int, float]:
        """valid time -> the value of the newest issue out at ``at_ms`` (for inspection)."""
        out: dict[int, tuple[int, float]] = {}
        for (valid, issued), v in self._rows.get((station, metric), {}).items():
            if issued <= at_ms and issued >= out.get(valid, (-1, 0.0))[0]:
                out[valid] = (issued, v)
        return {t: v for t, (_, v) in sorted(out.items())}

    def _forget(self, metric: str) -> None:
        self._cache.pop(metric, None)
        self._row_maps.pop(metric, None)

    def _flat(self, metric: str) -> _Flat | None:
        """Every station's values of ``metric`` end to end, sorted by (station, valid, issue),
        cached until a value of that metric changes."""
        flat = self._cache.get(metric)
        if flat is None:
            keys = sorted(k for k in self._rows if k[1] == metric)
            if not keys:
                return None
            names, starts, lens, rows = [], [], [], []
            for station, _ in keys:
                entries = sorted(self._rows[(station, metric)].items())
                names.append(station)
                starts.append(len(rows))
                lens.append(len(entries))
                rows.extend((valid, issued, v) for (valid, issued), v in entries)
            valid, issued, value = (np.array(c) for c in zip(*rows, strict=True))
            owner = np.repeat(np.arange(len(names)), lens)
            # the next entry is the same station's, for the same valid time (a newer issue)
            same_next = np.append((valid[1:] == valid[:-1]) & (owner[1:] == owner[:-1]), False)
            flat = self._cache[metric] = _Flat(
                {n: i for i, n in enumerate(names)}, np.array(starts, np.int64),
                np.array(lens, np.int64), valid.astype(np.int64), issued.astype(np.int64),
                value.astype(np.float64), same_next)
        return flat

    def _row_of(self, metric: str, flat: _Flat, station_index: dict[str, int]) -> np.ndarray:
        """Engine station id -> row of ``flat`` (-1: no forecast), kept while neither the
        values of the metric nor the engine's stations change (ids are only ever added)."""
        kept = self._row_maps.get(metric)
        if kept is not None and kept[0] == len(station_index):
            return kept[1]
        row_of = np.full(len(station_index), -1, np.int64)
        for name, row in flat.rows.items():
            i = station_index.get(name)
            if i is not None:
                row_of[i] = row
        self._row_maps[metric] = (len(station_index), row_of)
        return row_of

    def ahead(self, fn: str, station_index: dict[str, int], metric: str, pst: np.ndarray,
              pt: np.ndarray, window_ms: int) -> np.ndarray:
        """``fn`` (sum_ahead, max_ahead) over valid times in (t, t + W], each valid time
        with the value of the newest issue out at t, at every point (station id ``pst[i]``
        in ``station_index``, time ``pt[i]``), as one array operation over all points."""
        out = np.full(pt.shape, np.nan)
        flat = self._flat(metric)
        if flat is None or not pt.size:
            return out
        row_of = self._row_of(metric, flat, station_index)
        rows = np.where(pst < row_of.size, row_of[np.minimum(pst, row_of.size - 1)], -1)
        has = rows >= 0
        if not has.any():
            return out
        at, rows, t = np.flatnonzero(has), rows[has], pt[has][:, None]
        n = flat.lens[rows]
        cols = np.arange(int(n.max()))
        real = cols[None, :] < n[:, None]
        idx = np.where(real, flat.starts[rows][:, None] + cols[None, :], 0)
        valid, issued = flat.valid[idx], flat.issued[idx]
        out_then = real & (issued <= t)
        # within one valid time the issues are sorted, so those out at t are a prefix:
        # the newest of them is the one whose successor (same valid time) is not out yet
        next_out = np.concatenate((out_then[:, 1:], np.zeros((t.shape[0], 1), bool)), axis=1)
        newest = out_then & ~(flat.same_next[idx] & next_out)
        inside = newest & (valid > t) & (valid <= t + window_ms)
        some = inside.any(axis=1)
        if fn == "sum_ahead":
            agg = np.where(inside, flat.value[idx], 0.0).sum(axis=1)
        else:
            agg = np.where(inside, flat.value[idx], -np.inf).max(axis=1)
        out[at[some]] = agg[some]
        return out

    # -- durability ----------------------------------------------------------------------

    def snapshot(self) -> list[list[Any]]:
        """Plain values for the engine's snapshot: [station, metric, valid, issued, value]."""
        return [[st, m, t, i, v] for (st, m), rows in self._rows.items()
                for (t, i), v in sorted(rows.items())]

    def restore(self, rows: list[list[Any]] | None) -> None:
        """Load :meth:`snapshot` (None: a snapshot from before forecasts, an empty table)."""
        self._rows.clear()
        self._cache.clear()
        self._row_maps.clear()
        for st, m, t, i, v in rows or []:
            self.add(st, m, int(i), int(t), float(v))
