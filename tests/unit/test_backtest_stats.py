"""The backtest's pure reductions: periods, incidents, summary, comparison, plot thresholds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yujing.backtest import stats as st
from yujing.backtest.plots import Threshold, thresholds
from yujing.domain import EventKind, Grade, WarningEvent
from yujing.rules.schema import Rule

H = 3_600_000
M = 60_000


def ev(kind: str, station: str, ts: int, grade: Grade, incident: str, rule: str = "r1",
       previous: Grade = Grade.NONE) -> WarningEvent:
    return WarningEvent(kind=EventKind(kind), key=f"{rule}@{station}", episode=incident,
                        rule=rule, rule_name=rule.upper(), hazard="rain", station=station,
                        grade=grade, previous=previous, ts=ts, value=1.0, window="3h",
                        reason="because")


EVENTS = [
    ev("raised", "A", 1 * H, Grade.ORANGE, "i1"),
    ev("raised", "B", 2 * H, Grade.BLUE, "i2"),
    ev("upgraded", "A", 2 * H, Grade.RED, "i1", previous=Grade.ORANGE),
    ev("cleared", "A", 4 * H, Grade.RED, "i1"),
    ev("raised", "A", 6 * H, Grade.ORANGE, "i3"),  # a second incident, open at the end
]
END = 10 * H


def test_periods_split_each_incident_at_its_grade_changes():
    spans = st.periods(st.events_frame(EVENTS), END)
    got = spans[["station", "incident", "grade", "start", "end"]].values.tolist()
    assert got == [
        ["A", "i1", 3, 1 * H, 2 * H],
        ["A", "i1", 4, 2 * H, 4 * H],
        ["B", "i2", 1, 2 * H, END],   # never cleared: runs to the last reading
        ["A", "i3", 3, 6 * H, END],
    ]


def test_incidents_and_summary_per_rule():
    frame = st.events_frame(EVENTS)
    spans = st.periods(frame, END)
    inc = st.incidents(spans, frame)
    assert inc[["incident", "start", "end", "peak", "open"]].values.tolist() == [
        ["i1", 1 * H, 4 * H, 4, False], ["i2", 2 * H, END, 1, True], ["i3", 6 * H, END, 3, True]]
    summ = st.summary(spans, inc, {"r1": "R1", "quiet": "never fires"}).set_index("rule")
    r1 = summ.loc["r1"]
    assert (r1["incidents"], r1["stations"], r1["peak_blue"], r1["peak_orange"],
            r1["peak_red"], r1["open_at_end"]) == (3, 2, 1, 1, 1, 2)
    assert r1["hours_in_warning"] == 3 + 8 + 4
    assert (r1["first_alert_ms"], r1["first_alert_station"]) == (1 * H, "A")
    assert (r1["first_red_ms"], r1["first_blue_ms"]) == (2 * H, 2 * H)
    assert pd.isna(r1["first_yellow_ms"])
    quiet = summ.loc["quiet"]  # a rule with no warnings still has its row
    assert (quiet["incidents"], quiet["hours_in_warning"]) == (0, 0.0)


def test_events_frame_orders_by_event_time_keeping_emission_order_on_ties():
    frame = st.events_frame(EVENTS)
    assert frame["ts"].tolist() == sorted(e.ts for e in EVENTS)
    at_2h = frame[frame["ts"] == 2 * H]
    assert at_2h["station"].tolist() == ["B", "A"]


def test_empty_run_gives_empty_tables_and_zero_rows():
    frame = st.events_frame([])
    spans = st.periods(frame, END)
    inc = st.incidents(spans, frame)
    assert spans.empty and inc.empty
    assert st.summary(spans, inc, {"r1": "R1"})["incidents"].tolist() == [0]
    assert st.most_warned(inc, spans, 5) == []


def test_most_warned_ranks_by_incidents_then_time_in_warning():
    frame = st.events_frame(EVENTS + [ev("raised", "C", 9 * H, Grade.RED, "i9")])
    spans = st.periods(frame, END)
    inc = st.incidents(spans, frame)
    assert st.most_warned(inc, spans, 2) == ["A", "B"]  # A: 2 incidents; B 8 h beats C 1 h


def incidents_of(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["rule", "station", "start", "end", "peak"])


def test_compare_pairs_overlapping_incidents_and_names_the_rest():
    a = incidents_of([("r", "S1", 100 * M, 200 * M, 3),   # B starts 30 min earlier
                      ("r", "S2", 0, 50 * M, 2),          # B has nothing there: lost
                      ("r", "S3", 10 * M, 20 * M, 3),     # identical in B
                      ("r", "S4", 0, 10 * M, 1)])         # B's S4 is later, no overlap
    b = incidents_of([("r", "S1", 70 * M, 150 * M, 4),
                      ("r", "S3", 10 * M, 25 * M, 4),
                      ("r", "S4", 30 * M, 40 * M, 1),
                      ("r", "S5", 5 * M, 6 * M, 1)])      # only B: added
    cmp = st.compare(a, b)
    got = {(r.station, r.change): r.shift_min for r in cmp.itertuples()}
    assert got.keys() == {("S1", "shifted"), ("S2", "lost"), ("S3", "same"), ("S4", "lost"),
                          ("S4", "added"), ("S5", "added")}
    assert got[("S1", "shifted")] == -30.0
    s3 = cmp[cmp.station == "S3"].iloc[0]
    assert (s3.a_peak, s3.b_peak) == (3, 4)  # same start, severity changed: visible
    counts = st.compare_counts(cmp).set_index("rule").loc["r"]
    assert (counts.added, counts.lost, counts.shifted, counts.same) == (2, 2, 1, 1)
    assert counts.median_shift_min == -30.0


def test_compare_pairs_each_b_incident_once():
    a = incidents_of([("r", "S", 0, 100 * M, 3), ("r", "S", 110 * M, 200 * M, 3)])
    b = incidents_of([("r", "S", 50 * M, 150 * M, 3)])  # overlaps both A incidents
    assert sorted(st.compare(a, b)["change"]) == ["lost", "shifted"]


def test_rolling_uses_the_engines_half_open_window():
    ts = np.array([0, 60, 120, 180], dtype=np.int64) * M
    v = np.array([1.0, 2.0, 3.0, 4.0])
    # (t - 2h, t]: at 02:00 the 00:00 reading is out
    assert st.rolling(ts, v, "sum", 2 * H).tolist() == [1, 3, 5, 7]
    assert st.rolling(ts, v, "max", 2 * H).tolist() == [1, 2, 3, 4]
    assert st.rolling(ts, v, "last", 2 * H).tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="no rolling aggregate"):
        st.rolling(ts, v, "median", H)


def test_thresholds_read_simple_conditions_and_skip_compound_ones():
    class Station:
        thresholds = {"warning_level_m": 3.8}

    rule = Rule.model_validate({
        "id": "x", "name": "x", "hazard": "flood", "metric": "rain_mm",
        "grades": {"blue": {"agg": "sum", "window": "3h", "op": ">=", "value": 50},
                   "yellow": "last(water_level_m) >= station.warning_level_m",
                   "orange": {"when": "sum(rain_mm, 1h) > 30", "for": "10m"},
                   "red": "max(water_level_m, 1h) >= 5 and rate(water_level_m, 1h) > 0.3"}})
    got = thresholds(rule, Station())
    assert got == [Threshold(1, "rain_mm", "sum", 3 * H, ">=", 50.0),
                   Threshold(2, "water_level_m", "last", 0, ">=", 3.8),
                   Threshold(3, "rain_mm", "sum", H, ">", 30.0)]
    assert got[0].label == "blue: sum(3h) >= 50"
    # without the station, a registry threshold cannot be drawn, and is not guessed
    assert [t.grade for t in thresholds(rule, None)] == [1, 3]


def test_thresholds_take_each_simple_or_branch():
    class Station:
        thresholds = {"warning_level_m": 6.5, "level_5y_m": 6.8}

    rule = Rule.model_validate({
        "id": "x", "name": "x", "hazard": "flood",
        "grades": {"yellow": "last(water_level_m) >= station.warning_level_m\n"
                             " or last(water_level_m) >= station.level_5y_m",
                   "red": "(max(water_level_m, 1h) >= 9 or rate(water_level_m, 1h) > 1)"
                          " and count(water_level_m, 1h) >= 4"}})
    assert thresholds(rule, Station()) == [Threshold(2, "water_level_m", "last", 0, ">=", 6.5),
                                           Threshold(2, "water_level_m", "last", 0, ">=", 6.8)]
