"""CAP 1.2 rendering (yujing.alerts.cap), validated against the OASIS CAP 1.2 schema."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree as ET

import pytest
import xmlschema

from yujing.alerts.cap import NS, render_cap, render_feed
from yujing.alerts.records import CapRef, State, Warning

XSD = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "data" / "CAP-v1.2.xsd"))
T = 1_748_764_800_000
STATION = SimpleNamespace(lat=22.815, lon=113.673, plan="转移低洼处群众，关闭地下通道 & 车库")


def warning(refs: list[tuple[str, int]], hazard: str = "rainstorm") -> Warning:
    return Warning(incident="441900-20250601080000-0001", key="rain@DG-HM-R01", rule="rain",
                   rule_name="暴雨", hazard=hazard, station="DG-HM-R01", station_name="虎门镇雨量站",
                   town="虎门镇", grade=refs[-1][1], value=102.5, state=State.ACTIVE,
                   reason="sum(3h) = 102.5 >= 100 <red>", first_ts=T,
                   cap=[CapRef(i + 1, t, T + i * 600_000, g) for i, (t, g) in enumerate(refs)])


def field(xml: bytes, path: str) -> list[str]:
    root = ET.fromstring(xml)
    return [e.text or "" for e in root.iterfind(path, {"c": NS})]


@pytest.mark.parametrize("refs, severity", [
    ([("Alert", 4)], "Extreme"), ([("Alert", 3)], "Severe"),
    ([("Alert", 2)], "Moderate"), ([("Alert", 1)], "Minor")])
def test_alert_is_valid_cap_with_severity_from_grade(refs, severity):
    xml = render_cap(warning(refs), STATION)
    XSD.validate(xml)
    assert field(xml, "c:msgType") == ["Alert"]
    assert field(xml, "c:info/c:severity") == [severity]
    assert field(xml, "c:references") == []
    assert field(xml, "c:sent") == ["2025-06-01T16:00:00+08:00"]


def test_update_and_cancel_reference_every_earlier_message():
    w = warning([("Alert", 3), ("Update", 4), ("Cancel", 4)])
    xml = render_cap(w, STATION)
    XSD.validate(xml)
    assert field(xml, "c:msgType") == ["Cancel"]
    assert field(xml, "c:identifier") == ["441900-20250601080000-0001.3"]
    refs = field(xml, "c:references")[0].split()
    assert refs == ["yujing@dg.gov.cn.example,441900-20250601080000-0001.1,2025-06-01T16:00:00+08:00",
                    "yujing@dg.gov.cn.example,441900-20250601080000-0001.2,2025-06-01T16:10:00+08:00"]
    assert field(xml, "c:info/c:urgency") == ["Past"]
    update = render_cap(w, STATION, n=2)
    XSD.validate(update)
    assert field(update, "c:msgType") == ["Update"] and len(field(update, "c:references")[0].split()) == 1


def test_area_and_instruction_come_from_the_station():
    xml = render_cap(warning([("Alert", 4)]), STATION, region_code="441900")
    assert field(xml, "c:info/c:area/c:circle") == ["22.81500,113.67300 1.0"]
    assert field(xml, "c:info/c:area/c:areaDesc") == ["虎门镇 虎门镇雨量站"]
    assert field(xml, "c:info/c:area/c:geocode/c:value") == ["441900"]
    assert field(xml, "c:info/c:instruction") == [STATION.plan]   # '&' escaped, still valid
    assert field(xml, "c:info/c:category") == ["Met"]
    no_coords = render_cap(warning([("Alert", 4)], hazard="gas"), None)
    XSD.validate(no_coords)
    assert field(no_coords, "c:info/c:category") == ["CBRNE"]


def test_pending_incident_has_no_cap_message():
    w = warning([("Alert", 1)])
    w.cap = []
    with pytest.raises(ValueError, match="no CAP message yet"):
        render_cap(w)


def test_atom_feed_lists_latest_message_per_incident():
    a = warning([("Alert", 3), ("Update", 4)])
    b = warning([("Alert", 1)])
    b.incident = "441900-20250601080000-0002"
    feed = ET.fromstring(render_feed([a, b], "http://h", T))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("a:entry", ns)
    assert [e.find("a:link", ns).get("href") for e in entries] == [
        "http://h/v1/cap/441900-20250601080000-0001.xml",
        "http://h/v1/cap/441900-20250601080000-0002.xml"]
    assert entries[0].find("a:title", ns).text.startswith("[Update]")


def test_description_is_the_reason_in_words_and_the_expression_a_parameter():
    w = warning([("Alert", 4)])
    w.reason_zh = "过去3小时累计雨量102.5毫米，达到红色标准（≥100毫米）"
    xml = render_cap(w, STATION)
    XSD.validate(xml)
    assert field(xml, "c:info/c:description") == [w.reason_zh]
    names = field(xml, "c:info/c:parameter/c:valueName")
    values = field(xml, "c:info/c:parameter/c:value")
    assert dict(zip(names, values))["detail"] == "sum(3h) = 102.5 >= 100 <red>"
    feed = render_feed([w], "https://yj.example", T)
    assert w.reason_zh.encode() in feed
    # a record of before words keeps its expression as the description, with no detail
    old = render_cap(warning([("Alert", 4)]), STATION)
    assert field(old, "c:info/c:description") == ["sum(3h) = 102.5 >= 100 <red>"]
    assert "detail" not in field(old, "c:info/c:parameter/c:valueName")
