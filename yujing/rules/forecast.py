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

from typing import Any

import numpy as np

FORECAST_SUFFIX = "_fcst"
AHEAD_FNS = ("sum_ahead", "max_ahead")
EXPIRY_STEP_MS = 300_000  # a sweep per 5 minutes of stream time, not per envelope


class ForecastTable:
    def __init__(self) -> None:
        # (station, metric) -> (valid ms, issued ms) -> value
        self._rows: dict[tuple[str, str], dict[tuple[int, int], float]] = {}
        self._arrays: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._swept_to = -1  # the cut of the last sweep

    def __len__(self) -> int:
        return sum(len(r) for r in self._rows.values())

    def add(self, station: str, metric: str, issued: int, valid: int, value: float) -> None:
        """Take one forecast value. Issues are kept side by side until :meth:`expire`: a
        point reads, for each valid time, the newest issue out at its own time."""
        key = (station, metric)
        self._rows.setdefault(key, {})[(valid, issued)] = value
        self._arrays.pop(key, None)

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
                self._arrays.pop(key, None)
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

    def _series(self, key: tuple[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(valid, issued, value) sorted by valid then issue time, cached until it changes."""
        arr = self._arrays.get(key)
        if arr is None:
            rows = self._rows.get(key)
            if not rows:
                return None
            keys = sorted(rows)
            arr = self._arrays[key] = (np.array([k[0] for k in keys], dtype=np.int64),
                                       np.array([k[1] for k in keys], dtype=np.int64),
                                       np.array([rows[k] for k in keys], dtype=np.float64))
        return arr

    def ahead(self, fn: str, stations: list[str], metric: str, pst: np.ndarray, pt: np.ndarray,
              window_ms: int) -> np.ndarray:
        """``fn`` (sum_ahead, max_ahead) over valid times in (t, t + W], each valid time
        with the value of the newest issue out at t, at every point (station
        ``stations[pst[i]]``, time ``pt[i]``)."""
        out = np.full(pt.shape, np.nan)
        for s in np.unique(pst).tolist():
            arr = self._series((stations[s], metric))
            if arr is None:
                continue
            valid, issued, value = arr
            at = np.flatnonzero(pst == s)
            t = pt[at][:, None]
            out_then = issued[None, :] <= t
            # within one valid time the issues are sorted, so those out at t are a prefix:
            # the newest of them is the one whose successor (same valid time) is not out yet
            same_next = np.append(valid[1:] == valid[:-1], False)
            next_out = np.concatenate((out_then[:, 1:], np.zeros((t.shape[0], 1), bool)), axis=1)
            newest = out_then & ~(same_next[None, :] & next_out)
            inside = newest & (valid[None, :] > t) & (valid[None, :] <= t + window_ms)
            some = inside.any(axis=1)
            if fn == "sum_ahead":
                agg = np.where(inside, value[None, :], 0.0).sum(axis=1)
            else:
                agg = np.where(inside, value[None, :], -np.inf).max(axis=1)
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
        self._arrays.clear()
        for st, m, t, i, v in rows or []:
            self.add(st, m, int(i), int(t), float(v))
