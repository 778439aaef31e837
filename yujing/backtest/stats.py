"""Pure reductions of a backtest's warning events: periods, incidents, summary, comparison.

No file or terminal I/O here, so the tables an analyst reads are unit-tested
on hand-made events. Times are epoch ms (UTC) throughout; formatting for
people happens in ``backtest.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from yujing.domain import GRADE_NAMES, WarningEvent
from yujing.rules import windows

# ``incident`` is the event's episode (rule@station@opened time, as the live sink and the
# book's ``sources`` show it): a backtest has no warning book to name incidents.
EVENT_COLUMNS = ["ts", "station", "rule", "kind", "grade", "previous", "value", "window",
                 "reason", "incident", "rule_name", "hazard", "reason_zh", "reason_en"]
# Kinds after which a key is not (yet) in warning; every other kind keeps it in warning
# at the event's grade, so a later lifecycle (downgrade, acknowledged) needs no change here.
NOT_WARNING = frozenset({"cleared", "pending"})


def events_frame(events: Iterable[WarningEvent]) -> pd.DataFrame:
    """Warning events as a table, in event-time order (stable, so ties keep emission order)."""
    rows = [(e.ts, e.station, e.rule, getattr(e.kind, "value", str(e.kind)), int(e.grade),
             int(e.previous), e.value, e.window, e.reason, e.episode, e.rule_name, e.hazard,
             e.reason_zh or e.reason, e.reason_en or e.reason)
            for e in events]
    df = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    df = df.astype({"ts": "int64", "grade": "int64", "previous": "int64", "value": "float64"})
    return df.sort_values("ts", kind="stable", ignore_index=True)


def periods(events: pd.DataFrame, end_ms: int) -> pd.DataFrame:
    """Spans in warning, one per (incident, grade step): rule, station, incident, grade, start, end.

    A span lasts from its event to the next event of the same warning key, or to
    ``end_ms`` (the last reading) when the warning is still open at the end of the data.
    """
    cols = ["rule", "station", "incident", "grade", "start", "end", "reason_zh", "reason_en"]
    if events.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("grade", "start", "end")
                                          else "object") for c in cols})
    ev = events.sort_values(["rule", "station", "ts"], kind="stable")
    nxt = ev.groupby(["rule", "station"], sort=False)["ts"].shift(-1)
    ev = ev.assign(end=nxt.fillna(end_ms).astype("int64").clip(lower=ev["ts"]))
    ev = ev[~ev["kind"].isin(NOT_WARNING) & (ev["grade"] > 0)]
    out = ev.rename(columns={"ts": "start"})[cols]
    return out.sort_values(["start", "rule", "station"], kind="stable", ignore_index=True)


def incidents(spans: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """One row per incident: rule, station, incident, start, end, peak grade, open at the end."""
    cols = ["rule", "station", "incident", "start", "end", "peak", "open"]
    if spans.empty:
        return pd.DataFrame(columns=cols)
    inc = (spans.groupby("incident", sort=False)
           .agg(rule=("rule", "first"), station=("station", "first"), start=("start", "min"),
                end=("end", "max"), peak=("grade", "max"))
           .reset_index())
    closed = set(events.loc[events["kind"] == "cleared", "incident"])
    inc["open"] = ~inc["incident"].isin(closed)
    return inc[cols].sort_values(["start", "rule", "station"], kind="stable", ignore_index=True)


def summary(spans: pd.DataFrame, inc: pd.DataFrame, rules: dict[str, str]) -> pd.DataFrame:
    """Per rule: incidents by peak grade, stations, hours in warning, first alerts.

    ``rules`` maps every rule id that ran to its name, so a rule that never fired
    still has a row (with zeros): "no warnings" is a result an analyst needs to see.
    """
    rows = []
    for rule, name in rules.items():
        ri = inc[inc["rule"] == rule]
        rs = spans[spans["rule"] == rule]
        row: dict[str, object] = {"rule": rule, "name": name, "incidents": len(ri),
                                  "stations": ri["station"].nunique()}
        for g, label in enumerate(GRADE_NAMES, start=1):
            row[f"peak_{label}"] = int((ri["peak"] == g).sum())
        row["hours_in_warning"] = round(float((rs["end"] - rs["start"]).sum()) / 3_600_000, 3)
        row["open_at_end"] = int(ri["open"].sum())
        first = ri.sort_values("start", kind="stable").head(1)
        row["first_alert_ms"] = int(first["start"].iloc[0]) if len(first) else None
        row["first_alert_station"] = first["station"].iloc[0] if len(first) else ""
        opening = rs.sort_values("start", kind="stable").head(1)  # the first alert's words
        row["first_alert_reason_zh"] = opening["reason_zh"].iloc[0] if len(opening) else ""
        row["first_alert_reason_en"] = opening["reason_en"].iloc[0] if len(opening) else ""
        for g, label in enumerate(GRADE_NAMES, start=1):
            at = rs.loc[rs["grade"] == g, "start"]
            row[f"first_{label}_ms"] = int(at.min()) if len(at) else None
        rows.append(row)
    return pd.DataFrame(rows)


def most_warned(inc: pd.DataFrame, spans: pd.DataFrame, n: int) -> list[str]:
    """Stations with the most incidents (ties: longer in warning, then id), at most ``n``."""
    if inc.empty or n <= 0:
        return []
    hours = (spans["end"] - spans["start"]).groupby(spans["station"]).sum()
    t = inc.groupby("station").size().rename("n").to_frame().join(hours.rename("dur"))
    t = t.reset_index().sort_values(["n", "dur", "station"], ascending=[False, False, True])
    return t["station"].head(n).tolist()


def compare(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Match incidents of rule set A and B by warning key and overlap in time.

    For one (rule, station), an A incident is paired with the earliest unpaired B
    incident whose span overlaps it. Unpaired A incidents are ``lost``, unpaired B
    ones ``added``; pairs are ``shifted`` when the first alert moved (``shift_min``
    < 0: B warns earlier, a lead) and ``same`` otherwise. Peak grades are kept so a
    change of severity shows even when the start did not move.
    """
    cols = ["change", "rule", "station", "a_start", "b_start", "shift_min", "a_end", "b_end",
            "a_peak", "b_peak"]
    rows: list[dict] = []
    keys = sorted(set(zip(a["rule"], a["station"])) | set(zip(b["rule"], b["station"])))
    ga = {k: g for k, g in a.groupby(["rule", "station"])} if len(a) else {}
    gb = {k: g for k, g in b.groupby(["rule", "station"])} if len(b) else {}
    empty = pd.DataFrame(columns=["start", "end", "peak"])
    for rule, station in keys:
        ia = ga.get((rule, station), empty).sort_values("start")
        ib = gb.get((rule, station), empty).sort_values("start")
        b_list = list(ib[["start", "end", "peak"]].itertuples(index=False))
        used = [False] * len(b_list)
        for sa, ea, pa in ia[["start", "end", "peak"]].itertuples(index=False):
            j = next((j for j, (sb, eb, _) in enumerate(b_list)
                      if not used[j] and sa <= eb and sb <= ea), None)
            if j is None:
                rows.append(dict(change="lost", rule=rule, station=station, a_start=sa,
                                 a_end=ea, a_peak=pa))
                continue
            used[j] = True
            sb, eb, pb = b_list[j]
            shift = (sb - sa) / 60000
            rows.append(dict(change="shifted" if shift else "same", rule=rule, station=station,
                             a_start=sa, b_start=sb, shift_min=shift, a_end=ea, b_end=eb,
                             a_peak=pa, b_peak=pb))
        for j, (sb, eb, pb) in enumerate(b_list):
            if not used[j]:
                rows.append(dict(change="added", rule=rule, station=station, b_start=sb,
                                 b_end=eb, b_peak=pb))
    out = pd.DataFrame(rows, columns=cols)
    for c in ("a_start", "b_start", "a_end", "b_end", "a_peak", "b_peak"):
        out[c] = out[c].astype("Int64")
    out["shift_min"] = out["shift_min"].astype("float64")
    return out


def compare_counts(cmp: pd.DataFrame) -> pd.DataFrame:
    """Per rule: added, lost, shifted, same, and the median shift of the shifted (minutes)."""
    rows = []
    for rule, g in cmp.groupby("rule", sort=True):
        shifted = g.loc[g["change"] == "shifted", "shift_min"]
        rows.append({"rule": rule, **{c: int((g["change"] == c).sum())
                                      for c in ("added", "lost", "shifted", "same")},
                     "median_shift_min": float(np.median(shifted)) if len(shifted) else None})
    return pd.DataFrame(rows, columns=["rule", "added", "lost", "shifted", "same",
                                       "median_shift_min"])


def rolling(ts_ms: np.ndarray, values: np.ndarray, agg: str, window_ms: int) -> np.ndarray:
    """The engine's event-time window ``(t - W, t]`` aggregate at every reading, for plots
    (the engine's own implementation, so a plotted curve crosses a line where it fired)."""
    if agg not in windows.AGGREGATES:
        raise ValueError(f"no rolling aggregate for {agg!r}")
    return windows.rolling(ts_ms, values, agg, window_ms)
