"""The storm view's pure parts (yujing/console/storm.py): window sums, grades from the loaded
rules, the ranking, waterlogging depths; and the response-plan lookup (console/plans.py)
over the example registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from yujing.alerts.records import State, Warning
from yujing.alerts.templates import Line, render
from yujing.console import storm
from yujing.console.feeds import EventRing, ReadingsWindow
from yujing.console.plans import plan_for, plan_view
from yujing.envelope import Columns
from yujing.rules.loader import load_rules
from yujing.sim.scenario import GAUGES
from yujing.stations import load_registry

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules(ROOT / "rules")
REGISTRY = load_registry(ROOT / "stations.yaml")
MIN = 60_000
HOUR = 60 * MIN
T = 1_750_000_000_000 // HOUR * HOUR      # a whole hour, so window edges are easy to read


def steady(mm_per_5min: float, hours: float, end: int = T) -> tuple[np.ndarray, np.ndarray]:
    """Readings every 5 minutes for ``hours`` up to and including ``end``."""
    n = int(hours * 12)
    ts = end - np.arange(n)[::-1] * 5 * MIN
    return ts.astype(np.int64), np.full(n, mm_per_5min)


def test_the_bands_are_the_loaded_rules_thresholds_and_no_quality_range():
    bands = {(b.window, b.grade, b.value) for b in storm.rain_bands(RULES)}
    assert bands == {("1h", 1, 16.0), ("3h", 3, 50.0), ("3h", 4, 100.0)}
    # quality-range-rain (sum(rain_mm, 1h) > 200: a broken gauge) is not a rain grade
    assert all(b.rule != "quality-range-rain" for b in storm.rain_bands(RULES))
    assert storm.storm_hazards(RULES) == ["rainstorm", "waterlogging"]


@pytest.mark.parametrize("x, window, grade", [
    (15.9, "1h", 0), (16.0, "1h", 1), (49.9, "3h", 0), (50.0, "3h", 3), (99.9, "3h", 3),
    (100.0, "3h", 4), (500.0, "24h", 0)])
def test_a_sum_takes_the_highest_grade_it_reaches(x, window, grade):
    bands = [b for b in storm.rain_bands(RULES) if b.window == window]
    assert storm.grade_of(x, bands) == grade


def test_window_sums_end_at_as_of_and_leave_its_left_edge_out():
    ts = np.array([T - 3 * HOUR, T - 3 * HOUR + 1, T - HOUR, T - HOUR + 1, T, T + 1], np.int64)
    val = np.array([100.0, 1.0, 10.0, 2.0, 3.0, 1000.0])
    s = storm.sums(ts, val, T)
    # (T-1h, T]: 2 + 3; (T-3h, T]: 1 + 10 + 2 + 3; after as_of: not counted
    assert s == {"1h": 5.0, "3h": 16.0, "24h": 116.0}


def test_as_of_is_the_newest_reading_but_never_after_now():
    series = {"A": steady(1, 2, end=T - HOUR), "B": steady(1, 2, end=T)}
    assert storm.as_of_time(series, now_ms=T + 5 * HOUR) == T
    assert storm.as_of_time(series, now_ms=T - 10 * MIN) == T - 10 * MIN
    assert storm.as_of_time({}, now_ms=T) == T


def test_gauges_are_ranked_by_grade_then_3h_1h_24h_and_silent_ones_are_listed_last():
    gauges = {sid: REGISTRY.get(sid) for sid in GAUGES}
    series = {
        "DG-HM-R01": steady(3.0, 4),       # 36 mm/h: 3 h = 108 mm red, 1 h = 36 mm blue
        "DG-CA-R01": steady(1.5, 4),       # 18 mm/h: 3 h = 54 mm orange, 1 h blue
        "DG-HJ-R01": steady(1.0, 24),      # 12 mm/h: no grade; 3 h = 36, 24 h = 288
        "DG-DL-R01": steady(0.5, 3),       # 6 mm/h: no grade; 3 h = 18
        "DG-XX-R99": steady(2.0, 1),       # not registered, but it reports rain: listed too
    }                                      # (24 mm in 1 h: blue)
    rows = storm.rain_table(series, gauges, RULES, T)
    order = [r["station"] for r in rows]
    assert order[:5] == ["DG-HM-R01", "DG-CA-R01", "DG-XX-R99", "DG-HJ-R01", "DG-DL-R01"]
    assert set(order[5:]) == set(GAUGES) - {"DG-HM-R01", "DG-CA-R01", "DG-HJ-R01", "DG-DL-R01"}
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    hm, ca, hj, dl = rows[0], rows[1], rows[3], rows[4]
    assert (hm["sums"], hm["grades"], hm["grade"]) == (
        {"1h": 36.0, "3h": 108.0, "24h": 144.0}, {"1h": 1, "3h": 4, "24h": 0}, 4)
    assert (ca["sums"]["3h"], ca["grade"]) == (54.0, 3)
    # 24 h: no rule grades it; STANDARDS' rainstorm day (>= 50 mm) is a mark of its own
    assert (hj["grade"], hj["sums"]["24h"], hj["rainstorm_day"]) == (0, 288.0, True)
    assert (dl["sums"]["24h"], dl["rainstorm_day"]) == (18.0, False)
    assert hm["name"] == "虎门镇雨量站" and hm["town"] == "虎门镇"
    # 4 h of readings cover the 1 h and 3 h windows, not the 24 h one
    assert hm["partial"] == {"1h": False, "3h": False, "24h": True}
    assert hj["partial"] == {"1h": False, "3h": False, "24h": False}
    silent = rows[-1]
    # a silent gauge has no sums at all: not 0 mm (missing data is never all clear)
    assert silent["last_ts"] is None and silent["sums"] == {"1h": None, "3h": None, "24h": None}
    assert all(silent["partial"].values())


def test_a_waterlogging_point_is_graded_by_its_own_depths_else_the_rules_defaults():
    points = [s for s in REGISTRY.stations.values() if s.kind == "waterlogging"]
    underpass = REGISTRY.get("DG-NC-L01")        # its own, lower depths: 0.10/0.20/0.25/0.40
    assert [b.value for b in storm.depth_bands(RULES, underpass)] == [0.10, 0.20, 0.25, 0.40]
    bare = underpass.model_copy(update={"thresholds": {}})
    assert [b.value for b in storm.depth_bands(RULES, bare)] == [0.15, 0.25, 0.27, 0.50]
    one = np.array([T], np.int64)
    series = {"DG-NC-L01": (one, np.array([0.22])), "DG-DC-L01": (one, np.array([0.22])),
              "DG-HM-L01": (one, np.array([0.05]))}
    rows = storm.depth_table(points, series, RULES)
    by = {r["station"]: r for r in rows}
    assert by["DG-NC-L01"]["grade"] == 2 and by["DG-DC-L01"]["grade"] == 1   # same depth
    assert by["DG-HM-L01"]["grade"] == 0 and by["DG-CA-L01"]["depth"] is None
    assert [r["station"] for r in rows] == ["DG-NC-L01", "DG-DC-L01", "DG-HM-L01", "DG-CA-L01"]
    assert all(r["plan"] and r["plan"]["illustrative"] for r in rows)


def test_the_readings_window_gives_one_metric_per_station_last_value_winning():
    w = ReadingsWindow()

    def env(stations, metrics, si, mi, ts, val):
        return Columns(0, 0, stations, metrics, np.array(si), np.array(mi),
                       np.array(ts, np.int64), np.array(val, float))
    w.add(env(["A", "B"], ["rain_mm", "t_c"], [0, 1, 0], [0, 0, 1], [T, T, T], [1, 2, 30]), 1)
    w.add(env(["B", "A"], ["rain_mm"], [0, 1, 1], [0, 0, 0], [T, T + 1, T - 5],
              [9, 4, 7]), 2)
    got = {k: (list(ts), list(v)) for k, (ts, v) in w.metric_series("rain_mm").items()}
    assert got == {"A": ([T - 5, T, T + 1], [7, 1, 4]), "B": ([T], [9])}
    assert set(w.metric_series("rain_mm", t0=T + 1)) == {"A"}
    # the whole window's answer is reused only until the next envelope arrives
    assert w.metric_series("rain_mm") is w.metric_series("rain_mm")
    w.add(env(["C"], ["rain_mm"], [0], [0], [T], [2.5]), 3)
    assert set(w.metric_series("rain_mm")) == {"A", "B", "C"}


def test_events_are_kept_per_station_and_found_by_type_and_time():
    ring = EventRing(per_station=3)
    for i, kind in enumerate(["smoke", "fire", "smoke", "spark"]):
        ring.add_payload(f'{{"type": "{kind}", "station": "C1", "ts": {T + i}}}'.encode())
    ring.add_payload(b'{"type": "smoke", "station": "C2", "ts": 5}')
    assert not ring.add_payload(b"not json") and not ring.add_payload(b'{"station": "C1"}')
    # the oldest of C1's four fell out (three kept); newest first
    assert [d["ts"] for d in ring.find("C1", None, 0)] == [T + 3, T + 2, T + 1]
    assert [d["type"] for d in ring.find("C1", ["smoke", "fire"], 0)] == ["smoke", "fire"]
    assert ring.find("C1", ["smoke"], T + 3) == [] and ring.find("C9", None, 0) == []
    assert [d["ts"] for d in ring.find("C1", None, 0, T + 1)] == [T + 1]


# --- response plans ------------------------------------------------------------------------

def test_every_demo_gauge_and_waterlogging_point_has_an_illustrative_plan_with_steps():
    wanted = list(GAUGES) + [s.id for s in REGISTRY.stations.values() if s.kind == "waterlogging"]
    assert len(wanted) == 16
    for sid in wanted:
        view = plan_for(REGISTRY, sid)
        assert view is not None, f"{sid}: no response plan"
        assert view["illustrative"], f"{sid}: the example plan is not marked illustrative"
        labels = [s["label"] for s in view["steps"]]
        assert {"转移", "封路", "排涝"} <= set(labels), (sid, labels)
        assert all(s["text"] for s in view["steps"])


def test_a_plan_is_looked_up_by_station_and_split_into_labelled_steps():
    view = plan_view("【示例方案，非正式】转移：低洼区群众；封路：连升路；排涝：泵车2台。")
    assert view == {"text": "【示例方案，非正式】转移：低洼区群众；封路：连升路；排涝：泵车2台。",
                    "illustrative": True,
                    "steps": [{"label": "转移", "text": "低洼区群众"},
                              {"label": "封路", "text": "连升路"},
                              {"label": "排涝", "text": "泵车2台"}]}
    # an enterprise's own free-text plan: one step, not marked illustrative
    own = plan_view("立即停止抛光作业，关闭隔离阀，疏散车间人员。")
    assert own["illustrative"] is False
    assert own["steps"] == [{"label": "", "text": "立即停止抛光作业，关闭隔离阀，疏散车间人员"}]
    assert plan_view("") is None and plan_view("   ") is None
    assert plan_for(REGISTRY, "NO-SUCH-STATION") is None and plan_for(None, "DG-HM-R01") is None
    assert plan_for(REGISTRY, "DG-HM-R01")["steps"][0]["label"] == "转移"


def test_the_e_mail_of_a_demo_gauges_warning_carries_its_illustrative_plan():
    """E-mail takes the message's text variant (alerts/notify.py); the worker's plan_of reads
    the registry's plan (streams/alerting.py), as this lookup does."""
    w = Warning(incident="441900-20250601080000-0001", key="rainstorm-guangdong@DG-HM-R01",
                rule="rainstorm-guangdong", rule_name="暴雨", hazard="rainstorm",
                station="DG-HM-R01", station_name="虎门镇雨量站", town="虎门镇",
                state=State.ACTIVE, grade=3, value=54.0, window="3h", reason="3h 54 mm")
    plan = REGISTRY.get("DG-HM-R01").plan
    out = render([Line("raised", w, "raised")], "张三", ["A"], None,
                 lambda sid: REGISTRY.get(sid).plan, T)
    assert plan.startswith("【示例方案，非正式】") and plan in out.text
    assert plan not in out.sms                     # 70 characters: no room for a plan
