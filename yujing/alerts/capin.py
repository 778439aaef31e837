"""Official signals in: a CAP 1.2 message read, defused and validated. Pure (no I/O but the schema).

The meteorological or hydrological service's alerts arrive as CAP 1.2 XML
(pushed to ``POST /v1/cap`` or polled from a feed). They come from outside, so
the parser is xmlschema's defused one: a DTD, an entity declaration or an
external reference is refused before anything is read (no XXE, no billion
laughs, no network: ``allow="none"``), then the document is validated against
the OASIS schema shipped in ``schemas/``. Every refusal is a :class:`CapError`
with a reason a sender can act on; what passes becomes a :class:`CapAlert`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path
from xml.etree.ElementTree import Element

import xmlschema
from xmlschema.exceptions import XMLResourceBlocked, XMLResourceError, XMLResourceForbidden

NS = "urn:oasis:names:tc:emergency:cap:1.2"
XSD = Path(__file__).with_name("schemas") / "CAP-v1.2.xsd"
_schema: xmlschema.XMLSchema | None = None


class CapError(ValueError):
    """A CAP message refused: ``code`` is xml, forbidden or schema; ``reason`` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class Area:
    desc: str
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)  # (lat, lon) rings
    circles: list[tuple[float, float, float]] = field(default_factory=list)  # lat, lon, radius km
    geocodes: list[tuple[str, str]] = field(default_factory=list)            # (valueName, value)


@dataclass(frozen=True)
class Info:
    language: str
    categories: list[str]
    event: str
    severity: str
    urgency: str
    certainty: str
    sender_name: str = ""
    headline: str = ""
    description: str = ""
    instruction: str = ""
    web: str = ""
    effective_ms: int | None = None
    expires_ms: int | None = None
    areas: list[Area] = field(default_factory=list)


@dataclass(frozen=True)
class CapAlert:
    identifier: str
    sender: str
    sent_ms: int
    status: str                       # Actual, Exercise, System, Test, Draft
    msg_type: str                     # Alert, Update, Cancel, Ack, Error
    references: list[tuple[str, str]] = field(default_factory=list)  # (sender, identifier)
    infos: list[Info] = field(default_factory=list)

    @property
    def ref(self) -> tuple[str, str]:
        return (self.sender, self.identifier)

    def primary(self) -> Info | None:
        """The info block acted on: the first in Chinese, else the first. CAP repeats one
        alert's info per language; a service that sends several hazards in one message
        is not handled (each hazard should be its own alert)."""
        for info in self.infos:
            if info.language.lower().startswith("zh"):
                return info
        return self.infos[0] if self.infos else None


def schema() -> xmlschema.XMLSchema:
    global _schema
    if _schema is None:  # built once per process (about 0.1 s)
        _schema = xmlschema.XMLSchema(str(XSD))
    return _schema


def parse_cap(raw: bytes) -> CapAlert:
    """Defuse, validate and read one CAP 1.2 ``<alert>``; :class:`CapError` otherwise."""
    try:  # a file object: bytes alone would be taken for a path or URL when not markup
        res = xmlschema.XMLResource(BytesIO(raw), defuse="always", allow="none")
    except (XMLResourceForbidden, XMLResourceBlocked) as exc:
        raise CapError("forbidden", f"refused: the document declares a DTD, an entity or an "
                                    f"external reference ({exc}); send plain CAP XML") from None
    except (XMLResourceError, ValueError) as exc:
        raise CapError("xml", f"not well-formed XML: {exc}") from None
    if res.root.tag != f"{{{NS}}}alert":
        raise CapError("schema", f"the root element is {res.root.tag!r}, not a CAP 1.2 <alert> "
                                 f"in namespace {NS}")
    for err in schema().iter_errors(res):
        raise CapError("schema", f"not valid CAP 1.2 at {err.path}: {err.reason}")
    try:
        return _alert(res.root)
    except ValueError as exc:  # a polygon, circle or time the schema's strings let through
        raise CapError("schema", f"unreadable CAP value: {exc}") from None


def _t(el: Element, tag: str) -> str:
    return (el.findtext(f"{{{NS}}}{tag}") or "").strip()


def _all(el: Element, tag: str) -> list[Element]:
    return el.findall(f"{{{NS}}}{tag}")


def cap_ms(text: str) -> int:
    """A CAP dateTime (always with an offset, the schema's pattern demands it) in UTC ms."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _alert(root: Element) -> CapAlert:
    refs = []
    for item in _t(root, "references").split():
        parts = item.split(",")
        if len(parts) >= 2:
            refs.append((parts[0], parts[1]))
    return CapAlert(identifier=_t(root, "identifier"), sender=_t(root, "sender"),
                    sent_ms=cap_ms(_t(root, "sent")), status=_t(root, "status"),
                    msg_type=_t(root, "msgType"), references=refs,
                    infos=[_info(i) for i in _all(root, "info")])


def _info(el: Element) -> Info:
    def when(tag: str) -> int | None:
        text = _t(el, tag)
        return cap_ms(text) if text else None
    return Info(language=_t(el, "language") or "en-US",
                categories=[c.text or "" for c in _all(el, "category")], event=_t(el, "event"),
                severity=_t(el, "severity"), urgency=_t(el, "urgency"),
                certainty=_t(el, "certainty"), sender_name=_t(el, "senderName"),
                headline=_t(el, "headline"), description=_t(el, "description"),
                instruction=_t(el, "instruction"), web=_t(el, "web"),
                effective_ms=when("effective"), expires_ms=when("expires"),
                areas=[_area(a) for a in _all(el, "area")])


def _point(text: str) -> tuple[float, float]:
    lat, lon = text.split(",")
    return float(lat), float(lon)


def _area(el: Element) -> Area:
    polygons = [[_point(p) for p in (poly.text or "").split()] for poly in _all(el, "polygon")]
    circles = []
    for c in _all(el, "circle"):
        centre, radius = (c.text or "").split()
        circles.append((*_point(centre), float(radius)))
    codes = [(_t(g, "valueName"), _t(g, "value")) for g in _all(el, "geocode")]
    return Area(_t(el, "areaDesc"), polygons, circles, codes)
