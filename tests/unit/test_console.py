"""The console's pure parts: rights from roster teams, chart thresholds from rules, the
readings window, dead-letter counts, the station map's projection and the word lists."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from yujing.alerts.roster import load_roster, parse_roster
from yujing.console import i18n, mapsvg
from yujing.console.feeds import DeadLetterRing, ReadingsWindow
from yujing.console.rights import Rights, team_members
from yujing.console.thresholds import lines_for, metrics_of, rolling
from yujing.domain import Reading
from yujing.envelope import decode, encode_readings
from yujing.rules.loader import load_rules
from yujing.stations import Station, load_registry

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def roster():
    return load_roster(ROOT / "roster.yaml")


# --- rights -------------------------------------------------------------------------------

def test_members_come_from_rotations_shifts_overrides_swaps_and_leaders(roster):
    south = team_members(roster, "flood-south")
    assert {"zhang.wei", "li.na", "wang.fang", "zhou.tao", "wu.hua"} <= south
    assert "liu.yang" in south            # the override while 张伟 is ill
    assert "zhao.min" not in south        # 森防 only
    # zhou.tao leads one shift of the CSV shift table (roster-shifts.csv)
    assert team_members(roster, "forest") == {"zhao.min", "huang.lei", "wu.hua", "zhou.tao"}


@pytest.mark.parametrize("person, hazard, town, ok", [
    ("zhang.wei", "rainstorm", "虎门镇", True),      # on flood-south's rota
    ("zhang.wei", "gas", "沙田镇", False),            # 危化 is not his team
    ("zhao.min", "rainstorm", "虎门镇", False),       # 森防 officer on a flood warning
    ("zhao.min", "forest_fire", "清溪镇", True),
    ("huang.lei", "gas", "沙田镇", True),
    ("sun.li", "forest_fire", "清溪镇", True),        # duty room rota: every warning
    ("nobody", "rainstorm", "虎门镇", False),
])
def test_may_act_follows_the_responsible_team(roster, person, hazard, town, ok):
    v = Rights(roster).may_act(person, hazard, town)
    assert v.ok is ok, v.why
    if not ok:
        assert person in v.why and "console admin" in v.why


def test_admins_act_on_everything_and_no_roster_means_every_token_holder(roster):
    assert Rights(roster, admins=["zhao.min"]).may_act("zhao.min", "gas", "沙田镇").ok
    assert not Rights(roster).acts_on_all("zhang.wei").ok
    assert Rights(roster).acts_on_all("chen.jie").ok            # duty room
    assert Rights(None).may_act("anyone", "gas", "沙田镇").ok


def test_the_team_of_a_warning_is_the_roster_route(roster):
    r = Rights(roster)
    assert r.may_act("liu.yang", "rainstorm", "常平镇").team == "flood-city"
    assert r.may_act("liu.yang", "rainstorm", "虎门镇").team == "flood-south"
    assert r.domain_of("waterlogging") == "flood"


def test_a_roster_without_a_duty_room_gives_no_one_rights_over_all():
    r = parse_roster("people: [{id: a, name: A}, {id: c, name: C}]\n"
                     "teams:\n"
                     "  - {id: f, name: F, domain: flood, rotation: {start: 2025-01-01, "
                     "slots: [{A: a}]}}\n"
                     "  - {id: k, name: K, domain: chemical, rotation: {start: 2025-01-01, "
                     "slots: [{A: c}]}}\n")
    rights = Rights(r)
    assert rights.may_act("a", "rainstorm", "虎门镇").ok
    assert not rights.may_act("c", "rainstorm", "虎门镇").ok
    assert not rights.acts_on_all("a").ok


# --- thresholds ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rules():
    return {r.id: r for r in load_rules(ROOT / "rules")}


@pytest.fixture(scope="module")
def registry():
    return load_registry(ROOT / "stations.yaml")


def test_shorthand_conditions_give_lines_on_the_windowed_aggregate(rules, registry):
    lines = lines_for(rules["rainstorm-guangdong"], registry.get("DG-HM-R01"))
    assert [(x["grade"], x["agg"], x["window"], x["op"], x["value"]) for x in lines] == [
        (3, "sum", "3h", ">=", 50.0), (4, "sum", "3h", ">=", 100.0)]


def test_station_fields_resolve_and_arithmetic_gives_no_line(rules, registry):
    lines = lines_for(rules["river-level"], registry.get("DG-SL-H01"))
    got = {(x["grade"], x["value"], x["source"]) for x in lines}
    assert (3, 8.0, "guaranteed_level_m") in got and (2, 6.5, "warning_level_m") in got
    # blue is "warning_level_m - blue_margin_m": no line rather than a wrong one
    assert not any(x["grade"] == 1 and x["value"] == 6.5 for x in lines)
    assert lines_for(rules["river-level"], Station(id="X", name="x", kind="river_gauge")) == []


def test_metrics_of_rules(rules):
    assert metrics_of(rules["rainstorm-guangdong"]) == ["rain_mm"]
    assert "water_level_m" in metrics_of(rules["river-level"])


def test_rolling_aggregates_over_event_time():
    ts = np.arange(0, 12) * 300_000              # every 5 minutes
    val = np.full(12, 2.0)
    assert rolling(ts, val, "sum", "15m").tolist() == [2, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6]
    assert rolling(ts, val, "mean", "15m").tolist() == [2.0] * 12
    assert rolling(ts, np.arange(12.0), "max", "10m").tolist() == list(np.arange(12.0))
    assert rolling(ts, np.arange(12.0), "min", "10m").tolist()[-1] == 10.0


# --- readings window and dead letters -----------------------------------------------------

def env(rows: list[tuple[str, str, int, float]]) -> bytes:
    return encode_readings([Reading(*r) for r in rows])


def test_window_series_per_station_metric_sorted_last_value_wins():
    w = ReadingsWindow(max_readings=100, keep_ms=3_600_000)
    w.add(decode(env([("A", "rain_mm", 2000, 1.0), ("B", "rain_mm", 1000, 9.0),
                      ("A", "rain_mm", 1000, 0.5)])), now_ms=10)
    w.add(decode(env([("A", "rain_mm", 2000, 1.5), ("A", "temp_c", 1500, 20.0)])), now_ms=20)
    s = w.series("A")
    assert s["rain_mm"][0].tolist() == [1000, 2000] and s["rain_mm"][1].tolist() == [0.5, 1.5]
    assert w.latest("A") == {"rain_mm": (2000, 1.5), "temp_c": (1500, 20.0)}
    assert w.series("A", t0=1500)["rain_mm"][0].tolist() == [2000]
    assert w.series("nobody") == {}


def test_window_is_bounded_by_count_and_receive_age():
    w = ReadingsWindow(max_readings=4, keep_ms=1000)
    for i in range(3):
        w.add(decode(env([("A", "m", i * 10, 1.0), ("A", "m", i * 10 + 1, 1.0)])), now_ms=i)
    assert w.count == 4 and len(w.envelopes) == 2           # the oldest envelope went
    w.add(decode(env([("A", "m", 99, 1.0)])), now_ms=5000)
    assert w.count == 1                                      # older than keep_ms
    off = ReadingsWindow(max_readings=0)
    off.add(decode(env([("A", "m", 1, 1.0)])), now_ms=1)
    assert off.count == 0
    assert not w.add_payload(b"not an envelope", 1)


def test_dead_letters_by_reason_newest_first():
    ring = DeadLetterRing(3)
    for i, code in enumerate(["invalid", "range", "invalid", "invalid"]):
        ring.add_payload(f'{{"code": "{code}", "reason": "r{i}", "received_ms": {i}, '
                         f'"raw": {{"x": {i}}}}}'.encode())
    ring.add_payload(b"\xff garbage")
    assert ring.seen == 5
    by = {c["code"]: c for c in ring.by_reason()}
    assert by["invalid"]["count"] == 2 and by["invalid"]["reason"] == "r3"
    assert ring.latest(2)[0]["code"] == "?" and ring.latest(2)[1]["raw"] == '{"x":3}'


# --- map and words ------------------------------------------------------------------------

def test_map_places_every_registered_station_inside_the_drawing(registry):
    svg = mapsvg.render(registry.stations.values())
    ids = re.findall(r'data-station="([^"]+)"', svg)
    assert sorted(ids) == sorted(s.id for s in registry.stations.values() if s.lat is not None)
    proj = mapsvg.Projection(mapsvg.OUTLINE)
    for s in registry.stations.values():
        x, y = proj.xy(s.lat, s.lon)
        assert 0 <= x <= mapsvg.WIDTH and 0 <= y <= proj.height, s.id
    assert "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_map_escapes_names():
    st = Station(id="X1", name='<b>"x"</b>', kind="k", town="<i>", lat=23.0, lon=113.8)
    svg = mapsvg.render([st])
    assert "<b>" not in svg and "&lt;b&gt;" in svg


def test_every_word_has_both_languages():
    zh, en = i18n.table("zh"), i18n.table("en")
    assert zh.keys() == en.keys()
    assert zh["grade_4"] == "红色 I" and en["grade_1"] == "Blue IV"
    assert i18n.t("missing-key", "en") == "missing-key"
