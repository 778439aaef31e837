"""CAP 1.2 (OASIS Common Alerting Protocol, ITU-T X.1303) and an Atom feed. Pure.

Each CAP-worthy transition of an incident (raise → Alert, upgrade/downgrade →
Update, clear → Cancel) is one CAP message; its identifier is
``<incident>.<n>`` and an Update or Cancel references every earlier message
of the incident, as CAP asks. Severity from the grade is our choice
(STANDARDS.md): red→Extreme, orange→Severe, yellow→Moderate, blue→Minor.
The area is the station (name, town, a 1 km circle at its coordinates, the
administrative code); the instruction is the station's response plan, then the
latest report-back's (回报) status and measures; the alert's ``note`` carries that
report whole (:mod:`reportback`), so a receiver sees what was done.
Times carry seconds and an explicit offset, as the CAP schema's pattern demands.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from yujing.alerts import reportback
from yujing.alerts.records import CapRef, Warning
from yujing.domain import Grade

NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM = "http://www.w3.org/2005/Atom"
SH = ZoneInfo("Asia/Shanghai")
SEVERITY = {4: "Extreme", 3: "Severe", 2: "Moderate", 1: "Minor", 0: "Unknown"}
CATEGORY = {"rainstorm": "Met", "wind": "Met", "typhoon": "Met", "flood": "Met",
            "waterlogging": "Met", "river": "Met", "reservoir": "Met", "forest_fire": "Fire",
            "fire": "Fire", "gas": "CBRNE", "chemical": "CBRNE", "dust": "Safety",
            "industrial": "Safety", "nodata": "Infra"}


def cap_time(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, SH).isoformat(timespec="seconds")


def add_ref(w: Warning, kind: str, now_ms: int) -> None:
    """Record that the transition ``kind`` issues the incident's next CAP message.

    A raise is an Alert unless the incident already issued one (a raise after
    an unmute is an Update); a clear is a Cancel; anything else an Update.
    """
    msg_type = {"raised": "Alert", "cleared": "Cancel"}.get(kind, "Update")
    if kind == "raised" and w.cap:
        msg_type = "Update"
    w.cap.append(CapRef(len(w.cap) + 1, msg_type, now_ms, w.grade))


def identifier(w: Warning, ref: CapRef) -> str:
    return f"{w.incident}.{ref.n}"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def render_cap(w: Warning, station: Any = None, sender: str = "yujing@dg.gov.cn.example",
               sender_name: str = "", region_code: str = "441900", web: str | None = None,
               n: int | None = None) -> bytes:
    """The CAP message number ``n`` of the incident (default: the latest)."""
    if not w.cap:
        raise ValueError(f"incident {w.incident} has no CAP message yet (still pending)")
    ref = w.cap[-1] if n is None else next(r for r in w.cap if r.n == n)
    ET.register_namespace("", NS)
    alert = ET.Element(f"{{{NS}}}alert")
    _sub(alert, "identifier", identifier(w, ref))
    _sub(alert, "sender", sender)
    _sub(alert, "sent", cap_time(ref.sent_ms))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", ref.msg_type)
    _sub(alert, "scope", "Public")
    report = reportback.latest(w)
    if report is not None:
        _sub(alert, "note", reportback.words(report).zh)
    earlier = [r for r in w.cap if r.n < ref.n]
    if earlier and ref.msg_type != "Alert":
        _sub(alert, "references", " ".join(f"{sender},{identifier(w, r)},{cap_time(r.sent_ms)}"
                                           for r in earlier))
    _sub(alert, "incidents", w.incident)
    g = Grade(max(1, ref.grade))
    info = _sub(alert, "info")
    _sub(info, "language", "zh-CN")
    _sub(info, "category", CATEGORY.get(w.hazard, "Other"))
    _sub(info, "event", w.rule_name)
    _sub(info, "responseType", "AllClear" if ref.msg_type == "Cancel" else "Monitor")
    _sub(info, "urgency", "Past" if ref.msg_type == "Cancel" else "Immediate")
    _sub(info, "severity", SEVERITY[int(g)])
    _sub(info, "certainty", "Observed")
    code = _sub(info, "eventCode")
    _sub(code, "valueName", "yujing:hazard")
    _sub(code, "value", w.hazard)
    if w.first_ts:
        _sub(info, "onset", cap_time(w.first_ts))
    if sender_name:
        _sub(info, "senderName", sender_name)
    place = w.station_name or w.station
    verb = {"Alert": "发布", "Update": "更新", "Cancel": "解除"}[ref.msg_type]
    _sub(info, "headline", f"{w.town}{place}{w.rule_name}{g.zh}预警{verb}")
    _sub(info, "description", w.reason_zh or w.reason or w.rule_name)
    plan = getattr(station, "plan", "") if station is not None else ""
    if report is not None:
        status = reportback.STATUS.get(report.status)
        done = f"处置回报：{status.zh if status else report.status}"
        done += f"；措施：{report.measures}" if report.measures else ""
        plan = f"{plan}\n{done}" if plan else done
    if plan:
        _sub(info, "instruction", plan)
    if web:
        _sub(info, "web", web)
    for name, value in (("grade", f"{g.label} ({g.roman})"), ("station", w.station),
                        ("value", f"{w.value:g}"), ("state", w.state.value),
                        *((("detail", w.reason),) if w.reason and w.reason_zh else ())):
        p = _sub(info, "parameter")
        _sub(p, "valueName", name)
        _sub(p, "value", value)
    area = _sub(info, "area")
    _sub(area, "areaDesc", " ".join(x for x in (w.town, place) if x))
    lat, lon = getattr(station, "lat", None), getattr(station, "lon", None)
    if lat is not None and lon is not None:
        _sub(area, "circle", f"{lat:.5f},{lon:.5f} 1.0")
    geo = _sub(area, "geocode")
    _sub(geo, "valueName", "GB/T 2260")
    _sub(geo, "value", region_code)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(alert, encoding="utf-8")


def render_feed(warnings: list[Warning], base_url: str, now_ms: int,
                title: str = "Yujing 预警 CAP feed") -> bytes:
    """Atom feed of the latest CAP message of each incident, newest first."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    sub(feed, "id", f"{base_url}/v1/cap/feed.xml")
    sub(feed, "title", title)
    sub(feed, "updated", cap_time(now_ms))
    sub(feed, "link", rel="self", href=f"{base_url}/v1/cap/feed.xml")
    author = sub(feed, "author")
    sub(author, "name", "Yujing")
    for w in sorted((w for w in warnings if w.cap), key=lambda w: -w.cap[-1].sent_ms):
        ref = w.cap[-1]
        g = Grade(max(1, ref.grade))
        e = sub(feed, "entry")
        sub(e, "id", f"urn:yujing:cap:{identifier(w, ref)}")
        sub(e, "title", f"[{ref.msg_type}] {w.town}{w.station_name or w.station} {w.rule_name}"
                        f"{g.zh}预警")
        sub(e, "updated", cap_time(ref.sent_ms))
        sub(e, "link", rel="alternate", type="application/cap+xml",
            href=f"{base_url}/v1/cap/{w.incident}.xml")
        sub(e, "summary", w.reason_zh or w.reason)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(feed, encoding="utf-8")
