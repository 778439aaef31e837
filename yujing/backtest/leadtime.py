"""Lead time of projection and forecast warnings: the window they gained for evacuation.

A warning raised by ``eta()`` or ``project()`` foresaw that a series would reach a level
within a horizon. Its event carries that term (:class:`yujing.domain.Term`: the metric,
the level, the horizon), so the replayed readings answer how it turned out: the minutes
from the raise to the first reading at or over the level (the lead time gained), or a
false alarm when no reading got there within the horizon plus ``SLACK_MS``. A raise too
close to the end of the data to tell is ``undecided``. Pure reductions, like ``stats``.

A forecast rule foresaw an amount of the observed metric (the forecast metric without
``_fcst``), and the observations answer it the same way:

- ``sum(m, W) + sum_ahead(m_fcst, H) >= L`` (the forecast-driven rainstorm signal): the
  observed sum from W before the raise reaches L — crossed when the running sum of the
  readings after raise - W first gets there (at the raise at the earliest);
- ``sum_ahead(m_fcst, H) >= L``: the observed sum after the raise reaches L;
- ``max_ahead(m_fcst, H) >= L``: a reading after the raise reaches L.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from yujing.domain import Term, WarningEvent
from yujing.readings_csv import Readings
from yujing.rules.forecast import AHEAD_FNS, FORECAST_SUFFIX

PROJECTIONS = ("eta", "project")
FORECASTS = ("sum_past_ahead", *AHEAD_FNS)
RAISING = ("raised", "upgraded")
# A projection that comes true 30 minutes after its horizon still gave warning in time for
# the crossing it named (a trend is not a forecast to the minute): our choice.
SLACK_MS = 30 * 60_000
COLUMNS = ["rule", "station", "raised_ms", "metric", "level", "horizon_ms", "crossed_ms",
           "lead_min", "outcome"]


def projected(ev: WarningEvent) -> Term | None:
    """The rising projection or forecast that raised (or upgraded) this warning, if one did
    (a forecast only when it is compared from above: reach at least L)."""
    if getattr(ev.kind, "value", str(ev.kind)) not in RAISING:
        return None
    for t in ev.terms:
        if t.fn in PROJECTIONS and t.op in ("<=", "<", ">=", ">"):
            return t
        if t.fn in FORECASTS and t.op in (">=", ">"):
            return t
    return None


def _level(t: Term) -> float | None:
    """The level the projection said the series would reach: eta's ``raw``, or the
    threshold a projected value or a forecast was compared with."""
    return t.raw if t.fn == "eta" else t.threshold


def observed(t: Term) -> str:
    """The observed metric a term foresaw (a forecast metric without its suffix)."""
    return t.metric.removesuffix(FORECAST_SUFFIX) if t.fn in AHEAD_FNS else t.metric


def first_crossing(t: Term, level: float, raised: int, ts: np.ndarray,
                   val: np.ndarray) -> int | None:
    """The first time at or after ``raised`` that the observations reached what ``t`` foresaw,
    or None: a reading at the level (eta, project, max_ahead), or a running sum of the
    readings since the raise (sum_ahead) or since its past window began (sum_past_ahead)."""
    if t.fn in ("sum_ahead", "sum_past_ahead"):
        start = raised - (t.window_ms if t.fn == "sum_past_ahead" else 0)
        i = int(np.searchsorted(ts, start, side="right"))
        over = np.flatnonzero(np.cumsum(np.nan_to_num(val[i:])) >= level)
        return max(int(ts[i + over[0]]), raised) if over.size else None
    i = int(np.searchsorted(ts, raised, side="left"))
    over = np.flatnonzero(val[i:] >= level)
    return int(ts[i + over[0]]) if over.size else None


class _Series:
    """The readings sorted by (station, metric, time), to find each series' slice at once."""

    def __init__(self, data: Readings) -> None:
        order = np.lexsort((data.ts, data.mi, data.si))
        self.key = data.si[order].astype(np.int64) * (len(data.metrics) + 1) + data.mi[order]
        self.ts, self.val = data.ts[order], data.val[order]
        self.station = {s: i for i, s in enumerate(data.stations)}
        self.metric = {m: i for i, m in enumerate(data.metrics)}
        self.width = len(data.metrics) + 1

    def slice(self, station: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        s, m = self.station.get(station), self.metric.get(metric)
        if s is None or m is None:
            return self.ts[:0], self.val[:0]
        k = s * self.width + m
        a, b = np.searchsorted(self.key, [k, k + 1])
        return self.ts[a:b], self.val[a:b]


def lead_times(events: Iterable[WarningEvent], data: Readings, slack_ms: int = SLACK_MS
               ) -> pd.DataFrame:
    """One row per projection warning raised: when, the level and horizon, the first
    observed crossing and the minutes gained, and the outcome (crossed, false alarm,
    undecided)."""
    series = _Series(data)
    end = int(data.ts.max()) if len(data) else 0
    rows = []
    for ev in events:
        t = projected(ev)
        level = _level(t) if t is not None else None
        if t is None or level is None:
            continue
        ts, val = series.slice(ev.station, observed(t))
        crossed = first_crossing(t, level, ev.ts, ts, val)
        limit = ev.ts + t.horizon_ms + slack_ms
        if crossed is not None and crossed <= limit:
            outcome, lead = "crossed", (crossed - ev.ts) / 60_000
        elif end >= limit:
            outcome, lead = "false alarm", None
        else:
            outcome, lead = "undecided", None
        rows.append((ev.rule, ev.station, ev.ts, observed(t), float(level), t.horizon_ms,
                     crossed if outcome == "crossed" else None, lead, outcome))
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.astype({"raised_ms": "int64", "horizon_ms": "int64", "level": "float64",
                      "lead_min": "float64"})


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per rule: warnings, crossed, false alarms, undecided, and the lead time in minutes
    of those that crossed (median, quartiles, range)."""
    cols = ["rule", "warnings", "crossed", "false_alarms", "undecided", "lead_median_min",
            "lead_p25_min", "lead_p75_min", "lead_min_min", "lead_max_min"]
    out = []
    for rule, g in rows.groupby("rule", sort=True):
        lead = g.loc[g["outcome"] == "crossed", "lead_min"].to_numpy(dtype=np.float64)
        q = np.percentile(lead, [50, 25, 75, 0, 100]) if lead.size else [np.nan] * 5
        out.append((rule, len(g), int(lead.size), int((g["outcome"] == "false alarm").sum()),
                    int((g["outcome"] == "undecided").sum()), *[float(x) for x in q]))
    return pd.DataFrame(out, columns=cols)
