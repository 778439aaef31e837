"""Official signals in: CAP 1.2 parsing (defused, validated), area mapping, grade and hazard,
and the chain alert → update → cancel / expiry (yujing.alerts.capin, caparea, capmap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.capxml import SENDER, cap_xml
from yujing.alerts.caparea import inside, within
from yujing.alerts.capin import CapError, parse_cap
from yujing.alerts.capmap import SignalBook, grade_of, hazard_of, signal_key
from yujing.connectors.auth import OPEN, TokenEntry, Tokens
from yujing.domain import EventKind, Grade
from yujing.stations import load_registry

ROOT = Path(__file__).resolve().parents[2]
REG = load_registry(ROOT / "stations.yaml")
T0 = "2026-06-01T08:00:00+08:00"
NOW = 1_780_272_000_000 + 60_000       # a minute after T0
HM, CA = "DG-HM-R01", "DG-CA-R01"       # 虎门镇, 长安镇 rain gauges, inside the test polygon


def book() -> SignalBook:
    return SignalBook(REG, {"441900": ["*"], "441900113": ["虎门镇"]}, kinds={"rain_gauge"})


def by_station(events, station):
    return [e for e in events if e.station == station]


@pytest.mark.parametrize("raw, code", [
    (b"<alert", "xml"),
    (b"not xml at all", "xml"),
    (b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;</alert>', "forbidden"),
    (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
     b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&b;</alert>', "forbidden"),
    (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>',
     "schema"),
    (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"/>', "schema"),
    (cap_xml("A1", sent="2026-06-01T08:00:00Z"), "schema"),        # CAP forbids the Z
    (cap_xml("A1", msg_type="Warning"), "schema"),
    (cap_xml("A1", polygon="22.7;113.6 nonsense"), "schema"),
])
def test_refused_with_a_reason(raw, code):
    with pytest.raises(CapError) as err:
        parse_cap(raw)
    assert err.value.code == code
    assert err.value.reason


def test_station_kinds():
    every = SignalBook(REG).apply(parse_cap(cap_xml("A1", polygon=None, area_desc="虎门镇")), NOW)
    kinds = {REG.get(e.station).kind for e in every.events}
    assert "rain_gauge" in kinds and len(kinds) > 1


def test_parsed_fields():
    a = parse_cap(cap_xml("A1", refs=[("A0", T0)], circle="22.8,113.7 5"))
    assert a.ref == (SENDER, "A1") and a.references == [(SENDER, "A0")]
    info = a.primary()
    assert info is not None and info.event == "暴雨黄色预警信号"
    assert info.areas[0].circles == [(22.8, 113.7, 5.0)]
    assert info.expires_ms == 1_780_272_000_000 + 12 * 3_600_000


@pytest.mark.parametrize("event, severity, grade", [
    ("暴雨红色预警信号", "Moderate", Grade.RED),     # the colour in the name wins
    ("暴雨橙色预警信号", "Minor", Grade.ORANGE),
    ("台风黄色预警信号", "Severe", Grade.YELLOW),
    ("Yellow rainstorm warning", "Extreme", Grade.YELLOW),
    ("Flood warning", "Extreme", Grade.RED),
    ("Flood warning", "Severe", Grade.ORANGE),
    ("Flood warning", "Moderate", Grade.YELLOW),
    ("Flood warning", "Minor", Grade.BLUE),
    ("Flood warning", "Unknown", Grade.BLUE),
])
def test_grade(event, severity, grade):
    info = parse_cap(cap_xml("A1", event=event, severity=severity)).primary()
    assert grade_of(info) == grade


@pytest.mark.parametrize("event, category, hazard", [
    ("暴雨黄色预警信号", "Met", "rainstorm"), ("台风蓝色预警信号", "Met", "typhoon"),
    ("雷雨大风黄色预警信号", "Met", "wind"), ("森林火险橙色预警信号", "Fire", "forest_fire"),
    ("山洪灾害预警", "Met", "flood"), ("Tropical Cyclone Warning", "Met", "typhoon"),
    ("Earthquake", "Geo", "geohazard"), ("某预警", "Met", "weather"),
])
def test_hazard(event, category, hazard):
    assert hazard_of(parse_cap(cap_xml("A1", event=event, category=category)).primary()) == hazard


def test_point_in_polygon_and_circle():
    lat, lon = np.array([0.5, 1.5, 0.5, 0.9]), np.array([0.5, 0.5, 1.5, 0.1])
    tri = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    assert inside(lat, lon, tri).tolist() == [True, False, False, True]
    hook = [(0, 0), (2, 0), (2, 2), (1.5, 2), (1.5, 0.5), (0.5, 0.5), (0.5, 2), (0, 2)]
    assert inside(np.array([1.0, 0.25]), np.array([1.0, 1.0]), hook).tolist() == [False, True]
    # 0.1° of latitude is 11.1 km
    near = within(np.array([22.8, 22.9, 23.0]), np.array([113.7] * 3), 22.8, 113.7, 12.0)
    assert near.tolist() == [True, True, False]


@pytest.mark.parametrize("kw, expect", [
    ({"polygon": None, "area_desc": "东莞市虎门镇"}, {"DG-HM"}),             # town named
    ({"polygon": None, "geocode": "441900113"}, {"DG-HM"}),                  # geocode → town
    ({"polygon": None, "circle": "22.815,113.673 3"}, {"DG-HM"}),            # circle
    ({}, {"DG-HM", "DG-CA"}),                                                # polygon
])
def test_area_to_stations(kw, expect):
    out = book().apply(parse_cap(cap_xml("A1", **kw)), NOW)
    assert {e.station.rsplit("-", 1)[0][:5] for e in out.events} == expect
    assert all(e.kind == EventKind.RAISED for e in out.events)


def test_geocode_star_covers_every_town():
    out = book().apply(parse_cap(cap_xml("A1", polygon=None, geocode="441900")), NOW)
    towns = {s.town for s in REG.stations.values() if s.town and s.kind == "rain_gauge"}
    assert {e.town for e in out.events} == towns


def test_alert_update_cancel_chain():
    b = book()
    out = b.apply(parse_cap(cap_xml("A1")), NOW)
    hm = by_station(out.events, HM)[0]
    assert (hm.kind, hm.grade, hm.hazard, hm.rule, hm.window) == (EventKind.RAISED, Grade.YELLOW,
                                                                  "rainstorm", "cap", "official")
    assert hm.key == signal_key(SENDER, "rainstorm", HM) and hm.town == "虎门镇"
    assert "东莞市气象台" in hm.reason_zh and "http://www.tqyb.com.cn.example" in hm.reason_zh
    assert "有效至2026-06-01 20:00" in hm.reason_zh
    # upgrade to orange over a smaller area: Humen upgraded, Chang'an cleared
    up = b.apply(parse_cap(cap_xml("A2", "暴雨橙色预警信号", "Update", sent="2026-06-01T09:00:00+08:00",
                                   refs=[("A1", T0)], polygon=None, circle="22.815,113.673 3")), NOW)
    assert [(e.station, e.kind, e.grade) for e in up.events] == [
        (HM, EventKind.UPGRADED, Grade.ORANGE), (CA, EventKind.CLEARED, Grade.YELLOW)]
    assert up.events[0].episode == hm.episode  # same chain: same episode
    # the cancel references only the update: still the whole chain
    cancel = b.apply(parse_cap(cap_xml("A3", "暴雨橙色预警信号", "Cancel",
                                       sent="2026-06-01T10:00:00+08:00",
                                       refs=[("A2", "2026-06-01T09:00:00+08:00")], info=False)), NOW)
    assert [(e.station, e.kind) for e in cancel.events] == [(HM, EventKind.CLEARED)]
    assert "解除" in cancel.events[0].reason_zh
    assert b.signals == {} and b.chain == {}


def test_downgrade():
    b = book()
    b.apply(parse_cap(cap_xml("A1", "暴雨红色预警信号", circle="22.815,113.673 3", polygon=None)), NOW)
    out = b.apply(parse_cap(cap_xml("A2", "暴雨黄色预警信号", "Update", sent="2026-06-01T09:00:00+08:00",
                                    refs=[("A1", T0)], circle="22.815,113.673 3", polygon=None)), NOW)
    assert [(e.kind, e.grade, e.previous) for e in out.events] == [
        (EventKind.DOWNGRADED, Grade.YELLOW, Grade.RED)]


def test_cancel_without_a_known_chain_clears_by_its_own_area():
    out = book().apply(parse_cap(cap_xml("C1", msg_type="Cancel", refs=[("A1", T0)])), NOW)
    assert {(e.station, e.kind) for e in out.events} == {(HM, EventKind.CLEARED),
                                                         (CA, EventKind.CLEARED)}
    assert out.events[0].key == signal_key(SENDER, "rainstorm", out.events[0].station)


def test_expiry_clears():
    b = book()
    b.apply(parse_cap(cap_xml("A1", expires="2026-06-01T09:00:00+08:00")), NOW)
    expires = 1_780_272_000_000 + 3_600_000
    assert b.next_expiry() == expires
    assert b.expire(expires - 1) == []
    gone = b.expire(expires)
    assert {(e.station, e.kind, e.ts) for e in gone} == {(HM, EventKind.CLEARED, expires),
                                                          (CA, EventKind.CLEARED, expires)}
    assert "到期" in gone[0].reason_zh and b.signals == {} and b.next_expiry() is None


def test_already_expired_alert_raises_nothing():
    out = book().apply(parse_cap(cap_xml("A1", expires="2026-06-01T08:00:30+08:00")), NOW)
    assert out.events == [] and "expired" in out.note


@pytest.mark.parametrize("kw, note", [
    ({"status": "Exercise"}, "status Exercise"), ({"status": "Test"}, "status Test"),
    ({"msg_type": "Ack"}, "msgType Ack"), ({"info": False}, "no <info>"),
    ({"polygon": None, "circle": "10.0,10.0 1"}, "covers no station"),
])
def test_nothing_to_warn(kw, note):
    out = book().apply(parse_cap(cap_xml("A1", **kw)), NOW)
    assert out.events == [] and note in out.note


def test_the_right_to_post_official_signals():
    only = TokenEntry(gateway="gdqx", sha256="0" * 64, official_signals=True)
    device = TokenEntry(gateway="gauge", sha256="1" * 64, all_stations=True)
    ids = [ident for _, ident in Tokens([only, device]).entries]
    assert [i.official_signals for i in ids] == [True, False]
    assert OPEN.official_signals   # open ingest (a drill): everything, as for readings
    with pytest.raises(ValueError, match="scope"):
        TokenEntry(gateway="none", sha256="2" * 64)


def test_dump_and_load_keep_the_chain_and_expiry():
    b = book()
    b.apply(parse_cap(cap_xml("A1", expires="2026-06-01T09:00:00+08:00")), NOW)
    again = book()
    again.load(b.dump())
    assert again.signals == b.signals and again.chain == b.chain
    up = again.apply(parse_cap(cap_xml("A2", "暴雨红色预警信号", "Update", sent="2026-06-01T08:30:00+08:00",
                                       expires="2026-06-01T09:00:00+08:00", refs=[("A1", T0)])), NOW)
    assert {(e.station, e.kind, e.grade) for e in up.events} == {
        (HM, EventKind.UPGRADED, Grade.RED), (CA, EventKind.UPGRADED, Grade.RED)}
    assert len(again.expire(1_780_272_000_000 + 3_600_000)) == 2
