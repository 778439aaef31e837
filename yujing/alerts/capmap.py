"""Official signals into warnings: hazard, grade, identity, updates, cancels, expiry. Pure.

A :class:`SignalBook` turns each CAP message (:mod:`capin`) into the same
:class:`~yujing.domain.WarningEvent` records the rule worker publishes on
``yujing.warnings``, one per covered station (:mod:`caparea`), so an official
signal goes through the one warning book, roster and channels, grouped per town
and hazard with the rules' own warnings. ``now`` is passed in.

Identity: the key of a station's official warning is ``cap:<sender>:<hazard>@<station>``,
so it is known from any one message (a cancel still clears after the book that
saw the alert was restarted), and the book keeps one incident per station,
hazard and service. A chain of messages (an alert and the updates and cancels
whose ``references`` name it) is one episode, opened at the first alert's
``sent`` time; the book's state here is the chain's stations, grade and expiry.

- Alert: raise at every covered station.
- Update: the new grade at each station (an upgrade or a downgrade); stations the
  new area no longer covers clear, new ones raise.
- Cancel: every station of the chain clears (without a known chain: those of the
  cancel's own area).
- ``expires`` passed (checked by :meth:`SignalBook.expire`, and on arrival): clears.
- Status other than Actual (Exercise, Test, System, Draft) and Ack/Error: no warning.

Grade: a signal colour named in the event or headline (红色/橙色/黄色/蓝色, Red/Orange/
Yellow/Blue) wins, because Chinese signals carry their level in the name; otherwise
CAP severity: Extreme → red, Severe → orange, Moderate → yellow, Minor and Unknown → blue.
Hazard: the first keyword of :data:`HAZARDS` found in the event text, else by CAP category.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import msgspec

from yujing.alerts.caparea import AreaIndex
from yujing.alerts.capin import CapAlert, Info
from yujing.clock import DEFAULT_ZONE, local_time
from yujing.domain import EventKind, Grade, WarningEvent, episode_ref
from yujing.stations import Registry

COLOURS = [("红色", Grade.RED), ("橙色", Grade.ORANGE), ("黄色", Grade.YELLOW), ("蓝色", Grade.BLUE),
           ("red", Grade.RED), ("orange", Grade.ORANGE), ("yellow", Grade.YELLOW),
           ("blue", Grade.BLUE)]
SEVERITY = {"Extreme": Grade.RED, "Severe": Grade.ORANGE, "Moderate": Grade.YELLOW,
            "Minor": Grade.BLUE, "Unknown": Grade.BLUE}
HAZARDS = [("暴雨", "rainstorm"), ("台风", "typhoon"), ("雷雨大风", "wind"), ("大风", "wind"),
           ("山洪", "flood"), ("洪水", "flood"), ("洪涝", "flood"), ("内涝", "waterlogging"),
           ("森林火险", "forest_fire"), ("高温", "heat"), ("寒冷", "cold"), ("冰雹", "hail"),
           ("大雾", "fog"), ("灰霾", "haze"), ("干旱", "drought"), ("雷电", "lightning"),
           ("地质灾害", "geohazard"), ("rainstorm", "rainstorm"), ("heavy rain", "rainstorm"),
           ("typhoon", "typhoon"), ("tropical cyclone", "typhoon"), ("flood", "flood"),
           ("wind", "wind"), ("fire", "forest_fire"), ("heat", "heat"), ("thunder", "lightning")]
CATEGORY = {"Met": "weather", "Geo": "geohazard", "Fire": "fire", "Env": "environment",
            "Safety": "safety", "Infra": "infrastructure", "CBRNE": "chemical"}
WINDOW = "official"   # the window field of an official signal's events: no rule window


def grade_of(info: Info) -> Grade:
    text = f"{info.event} {info.headline}".lower()
    for word, grade in COLOURS:
        if word in text:
            return grade
    return SEVERITY.get(info.severity, Grade.BLUE)


def hazard_of(info: Info) -> str:
    text = info.event.lower()
    for word, hazard in HAZARDS:
        if word in text:
            return hazard
    first = info.categories[0] if info.categories else "Other"
    return CATEGORY.get(first, "other")


def signal_key(sender: str, hazard: str, station: str) -> str:
    return f"cap:{sender}:{hazard}@{station}"


@dataclass
class Signal:
    """One chain of CAP messages that is in force: what it covers and until when."""

    root: tuple[str, str]            # (sender, identifier) of the first alert
    opened_ts: int                   # its sent time: the episode of every station's warning
    hazard: str
    grade: Grade
    stations: set[str]
    expires_ms: int | None
    info: Info
    identifier: str                  # the newest message of the chain


@dataclass
class Outcome:
    events: list[WarningEvent] = field(default_factory=list)
    note: str = ""                   # why nothing was raised, for the sender's reply


@dataclass
class Saved:
    """What a :class:`SignalBook` keeps across a restart (:meth:`SignalBook.dump`)."""

    signals: list[Signal]
    chain: list[tuple[tuple[str, str], tuple[str, str]]]


class SignalBook:
    """The official signals in force, and the warning events each new message makes."""

    def __init__(self, registry: Registry, geocodes: dict[str, list[str]] | None = None,
                 kinds: Collection[str] | None = None, zone: str = DEFAULT_ZONE) -> None:
        self.registry, self.zone, self.geocodes, self.kinds = registry, zone, geocodes, kinds
        self.areas = AreaIndex(registry, geocodes, kinds)
        self.signals: dict[tuple[str, str], Signal] = {}     # root -> signal
        self.chain: dict[tuple[str, str], tuple[str, str]] = {}  # any message -> its root

    def dump(self) -> bytes:
        """The signals in force and their chains as JSON, so a restart keeps expiry and updates."""
        return msgspec.json.encode(Saved(list(self.signals.values()), list(self.chain.items())))

    def load(self, raw: bytes) -> None:
        saved = msgspec.json.decode(raw, type=Saved)
        self.signals = {s.root: s for s in saved.signals}
        self.chain = dict(saved.chain)

    def set_registry(self, registry: Registry) -> None:
        self.registry, self.areas = registry, AreaIndex(registry, self.geocodes, self.kinds)

    def apply(self, alert: CapAlert, now_ms: int) -> Outcome:
        if alert.status != "Actual":
            return Outcome(note=f"status {alert.status}: not an actual alert, no warning")
        if alert.msg_type not in ("Alert", "Update", "Cancel"):
            return Outcome(note=f"msgType {alert.msg_type}: nothing to warn")
        root = next((self.chain[r] for r in alert.references if r in self.chain), None)
        old = self.signals.get(root) if root else None
        info = alert.primary()
        if alert.msg_type == "Cancel":
            return self._cancel(alert, old, info)
        if info is None:
            return Outcome(note="no <info>: nothing to warn")
        if info.expires_ms is not None and info.expires_ms <= now_ms:
            if old is None:
                return Outcome(note="already expired: no warning")
            return self._end(self._drop(old), alert.sent_ms, "expired")
        sig = Signal(root=old.root if old else alert.ref,
                     opened_ts=old.opened_ts if old else alert.sent_ms, hazard=hazard_of(info),
                     grade=grade_of(info), stations=self.areas.stations_of(info.areas),
                     expires_ms=info.expires_ms, info=info, identifier=alert.identifier)
        out = Outcome(self._changes(old, sig, alert))
        if not sig.stations:
            out.note = "the area covers no station of the registry"
        if old is not None:
            self._drop(old)
        if sig.stations:
            self.signals[sig.root] = sig
            self.chain[sig.root] = self.chain[alert.ref] = sig.root
        return out

    def expire(self, now_ms: int) -> list[WarningEvent]:
        """Clears for every signal whose ``expires`` has passed."""
        events: list[WarningEvent] = []
        for sig in [s for s in self.signals.values()
                    if s.expires_ms is not None and s.expires_ms <= now_ms]:
            events += self._end(self._drop(sig), sig.expires_ms or now_ms, "expired").events
        return events

    def next_expiry(self) -> int | None:
        times = [s.expires_ms for s in self.signals.values() if s.expires_ms is not None]
        return min(times) if times else None

    # -- inside ----------------------------------------------------------------
    def _drop(self, sig: Signal) -> Signal:
        self.signals.pop(sig.root, None)
        for k in [k for k, r in self.chain.items() if r == sig.root]:
            del self.chain[k]
        return sig

    def _cancel(self, alert: CapAlert, old: Signal | None, info: Info | None) -> Outcome:
        if old is not None:
            return self._end(self._drop(old), alert.sent_ms, "cancelled", alert)
        if info is None:
            return Outcome(note="cancels nothing in force here")
        # No chain known (restarted, or the alert went to another gateway): the keys are
        # known from the cancel's own event and area; the book ignores those not open.
        sig = Signal(alert.ref, alert.sent_ms, hazard_of(info), grade_of(info),
                     self.areas.stations_of(info.areas), None, info, alert.identifier)
        return self._end(sig, alert.sent_ms, "cancelled", alert)

    def _end(self, sig: Signal, ts: int, why: str, alert: CapAlert | None = None) -> Outcome:
        """Clears of every station of ``sig`` (cancelled, or expired at ``ts``)."""
        sender = alert.sender if alert else sig.root[0]
        return Outcome([self._event(EventKind.CLEARED, sig, st, sig.grade, sig.grade, ts, why,
                                    sender) for st in sorted(sig.stations)])

    def _changes(self, old: Signal | None, new: Signal, alert: CapAlert) -> list[WarningEvent]:
        """Events taking each station from the old signal (if any) to the new one."""
        before = {signal_key(old.root[0], old.hazard, s): s for s in old.stations} if old else {}
        events = []
        for st in sorted(new.stations):
            prev = old.grade if old and signal_key(new.root[0], new.hazard, st) in before \
                else Grade.NONE
            kind = (EventKind.RAISED if prev == Grade.NONE or prev == new.grade else
                    EventKind.UPGRADED if new.grade > prev else EventKind.DOWNGRADED)
            events.append(self._event(kind, new, st, new.grade, prev, alert.sent_ms,
                                      alert.msg_type.lower(), alert.sender))
        now_keys = {signal_key(new.root[0], new.hazard, s) for s in new.stations}
        for key, st in sorted(before.items()):
            if key not in now_keys and old is not None:
                events.append(self._event(EventKind.CLEARED, old, st, old.grade, old.grade,
                                          alert.sent_ms, "area", alert.sender))
        return events

    def _event(self, kind: EventKind, sig: Signal, station: str, grade: Grade, previous: Grade,
               ts: int, why: str, sender: str) -> WarningEvent:
        st = self.registry.get(station)
        key = signal_key(sig.root[0], sig.hazard, station)
        zh, en = self._words(sig, why, ts)
        info = sig.info
        return WarningEvent(
            kind=kind, key=key, episode=episode_ref(key, sig.opened_ts), rule="cap",
            rule_name=info.event, hazard=sig.hazard, station=station, grade=grade,
            previous=previous, ts=ts, value=None, window=WINDOW,
            reason=f"official signal {sig.identifier} from {sender} ({why}): {info.event}, "
                   f"severity {info.severity}" + (f"; {info.web}" if info.web else ""),
            station_name=st.name if st else "", town=st.town if st else "", opened_ts=sig.opened_ts,
            reason_zh=zh, reason_en=en, measure_zh=info.event, measure_en=info.event)

    def _words(self, sig: Signal, why: str, ts: int) -> tuple[str, str]:
        """The officer's words: who issued which signal, until when, and where it is."""
        info = sig.info
        who = info.sender_name or sig.root[0]
        link_zh = f"；原文：{info.web}" if info.web else ""
        link_en = f"; source: {info.web}" if info.web else ""
        if why == "expired":
            at = local_time(ts, self.zone)
            return (f"官方预警信号到期：{who}发布的{info.event}已于{at}到期{link_zh}",
                    f"official signal expired: {info.event} from {who} ended at {at}{link_en}")
        if why in ("cancelled", "area"):
            verb_zh = "解除" if why == "cancelled" else "调整范围，本站不再在内："
            verb_en = "cancelled" if why == "cancelled" else "no longer covers this station"
            return (f"官方预警信号解除：{who}{verb_zh}{info.event}{link_zh}",
                    f"official signal: {who} {verb_en}: {info.event}{link_en}")
        until_zh = f"，有效至{local_time(sig.expires_ms, self.zone)}" if sig.expires_ms else ""
        until_en = f", valid until {local_time(sig.expires_ms, self.zone)}" if sig.expires_ms else ""
        head = f"（{info.headline}）" if info.headline and info.headline != info.event else ""
        return (f"官方预警信号：{who}发布{info.event}{head}{until_zh}{link_zh}",
                f"official signal: {who} issued {info.event}{until_en}{link_en}")
