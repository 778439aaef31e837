"""The book's state machine of one incident (a :class:`Warning`), pure, time passed in.

The warning book (the worker that owns the warning's group) keeps the
authoritative :class:`Warning`: its state (pending → active → acknowledged →
cleared), its grade, who acknowledged it, a manual clear (销警), and a timeline
where every transition carries a readable reason. Evaluator events
(:func:`on_event`) and officers' commands (:func:`acknowledge`,
:func:`add_note`, :func:`manual_clear`) are idempotent: replaying one after a
restart changes nothing. The events come from the worker's
:class:`~yujing.alerts.lifecycle.Lifecycle`; what follows a change (escalation,
grouping, delivery) is the book's and the outbox's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from yujing.alerts import phrases
from yujing.alerts.phrases import Text
from yujing.alerts.records import State, Warning
from yujing.domain import EventKind, Grade, WarningEvent, group_key


@dataclass
class Change:
    """What one event or command did to a warning, for the notification stages."""

    warning: Warning
    kind: str = ""           # raised, upgraded, downgraded, cleared, acknowledged, note, ...
    notify: bool = False     # tell people (the grade and escalation stages decide whom)
    applied: bool = True     # False: a replay or a no-op, nothing to persist


def new_warning(ev: WarningEvent, incident: str, partition: int, now_ms: int) -> Warning:
    return Warning(incident=incident, key=ev.key, rule=ev.rule, rule_name=ev.rule_name,
                   hazard=ev.hazard, station=ev.station, station_name=ev.station_name,
                   town=ev.town, enterprise=ev.enterprise,
                   group=group_key(ev.town, ev.hazard, ev.station),
                   partition=partition, grade=0, first_ts=ev.ts, source_id=ev.episode,
                   updated_ms=now_ms)


def _replayed(w: Warning, ev: WarningEvent) -> bool:
    mark = f"{ev.kind.value}:{int(ev.grade)}"
    if ev.ts < w.last_ts:
        return True
    return ev.ts == w.last_ts and mark in w.seen_at_last


def _seen(w: Warning, ev: WarningEvent) -> None:
    mark = f"{ev.kind.value}:{int(ev.grade)}"
    if ev.ts != w.last_ts:
        w.last_ts, w.seen_at_last = ev.ts, []
    w.seen_at_last.append(mark)


def on_event(w: Warning, ev: WarningEvent, now_ms: int) -> Change:
    """Apply one evaluator event to its incident (created by the caller if new)."""
    if _replayed(w, ev):
        return Change(w, applied=False)
    _seen(w, ev)
    g = Grade(ev.grade)
    if ev.value is not None:  # a clear without a value keeps the last one
        w.value = ev.value
    w.window, w.updated_ms = ev.window, now_ms
    if ev.kind == EventKind.PENDING:
        return _pending(w, ev, g, now_ms)
    if ev.kind in (EventKind.RAISED, EventKind.UPGRADED, EventKind.DOWNGRADED):
        return _graded(w, ev, g, now_ms)
    if ev.kind == EventKind.CLEARED:
        return _rule_cleared(w, ev, now_ms)
    return Change(w, applied=False)


def _pending(w: Warning, ev: WarningEvent, g: Grade, now_ms: int) -> Change:
    if w.state == State.PENDING:
        w.grade = int(g)
        _words(w, ev)
        w.log(now_ms, "pending", ev.reason, grade=int(g), actor="rule", **_said(ev))
        return Change(w, "pending")
    w.log(now_ms, "pending", f"{g.label} condition holds, waiting for its for: "
                              f"({ev.reason})", grade=int(g), actor="rule",
          **phrases.waiting_for_hold(g, _rule_words(ev)).kw())
    return Change(w, "note")


def _graded(w: Warning, ev: WarningEvent, g: Grade, now_ms: int) -> Change:
    """A raise, upgrade or downgrade: after a manual clear only a higher grade reopens."""
    if w.state == State.CLEARED:
        if w.cleared_by != "rule" and g > w.manual_grade:
            return Change(w, "reopen", notify=True)
        w.log(now_ms, "note", f"rule now at {g.label} after a manual clear at "
                              f"{Grade(w.manual_grade).label}: not re-raised until the grade "
                              f"rises or the rule clears ({ev.reason})",
              grade=int(g), actor="rule",
              **phrases.held_after_manual_clear(g, Grade(w.manual_grade), _rule_words(ev)).kw())
        return Change(w, "note")
    if w.state == State.PENDING:
        w.state, w.grade, w.peak = State.ACTIVE, int(g), max(w.peak, int(g))
        w.raised_ms = now_ms
        _words(w, ev)
        w.log(now_ms, "raised", ev.reason, grade=int(g), actor="rule", **_said(ev))
        return Change(w, "raised", notify=True)
    if int(g) == w.grade:
        return Change(w, applied=False)
    previous = Grade(w.grade)
    w.grade, w.peak = int(g), max(w.peak, int(g))
    _words(w, ev)
    if g > previous:
        if w.state == State.ACKNOWLEDGED:
            # The ack was for the lower grade; a worse hazard needs a fresh one.
            w.state = State.ACTIVE
            w.log(now_ms, "upgraded", f"{previous.label} -> {g.label}; acknowledgement by "
                  f"{w.acked_by} was for {previous.label}, a new one is needed: {ev.reason}",
                  grade=int(g), actor="rule",
                  **phrases.upgraded_needs_new_ack(previous, g, w.acked_by, _rule_words(ev)).kw())
        else:
            w.log(now_ms, "upgraded", ev.reason, grade=int(g), actor="rule", **_said(ev))
        return Change(w, "upgraded", notify=True)
    w.log(now_ms, "downgraded", ev.reason, grade=int(g), actor="rule", **_said(ev))
    return Change(w, "downgraded", notify=True)


def _rule_cleared(w: Warning, ev: WarningEvent, now_ms: int) -> Change:
    if w.state == State.CLEARED:
        if w.cleared_by != "rule":
            w.log(now_ms, "note", f"rule clear condition met after the manual clear: "
                                  f"{ev.reason}", actor="rule",
                  **phrases.rule_clear_after_manual(_rule_words(ev)).kw())
            w.manual_grade = 0
            return Change(w, "rule-cleared")
        return Change(w, applied=False)
    was_pending = w.state == State.PENDING
    w.state, w.cleared_ms, w.cleared_by, w.esc, w.muted = State.CLEARED, now_ms, "rule", None, ""
    _words(w, ev)  # the clear message quotes why it cleared, not why it was raised
    w.log(now_ms, "cleared", ev.reason, grade=w.grade, actor="rule", **_said(ev))
    return Change(w, "cleared", notify=not was_pending)


def acknowledge(w: Warning, who: str, note: str, now_ms: int, command_id: str = "") -> Change:
    """An officer takes the warning: escalation stops; the note goes on the timeline."""
    if command_id and command_id in w.commands:
        return Change(w, applied=False)
    _remember(w, command_id)
    if w.state != State.ACTIVE:
        why = {State.ACKNOWLEDGED: f"already acknowledged by {w.acked_by}",
               State.CLEARED: "already cleared", State.PENDING: "still pending, nobody was told"}
        w.log(now_ms, "note", f"acknowledgement by {who} not needed: {why[w.state]}"
              + (f"; note: {note}" if note else ""), actor=who,
              **phrases.ack_not_needed(who, w.state.value, w.acked_by, w.cleared_by, note).kw())
        return Change(w, "note")
    w.state, w.acked_by, w.acked_ms, w.ack_note, w.esc = State.ACKNOWLEDGED, who, now_ms, note, None
    w.updated_ms = now_ms
    w.log(now_ms, "acknowledged", f"acknowledged by {who}" + (f": {note}" if note else "")
          + "; escalation stopped", grade=w.grade, actor=who,
          **phrases.acknowledged(who, note).kw())
    return Change(w, "acknowledged")


def add_note(w: Warning, who: str, note: str, now_ms: int, command_id: str = "") -> Change:
    if command_id and command_id in w.commands:
        return Change(w, applied=False)
    _remember(w, command_id)
    w.updated_ms = now_ms
    w.log(now_ms, "note", note, actor=who)
    return Change(w, "note")


def manual_clear(w: Warning, who: str, reason: str, now_ms: int, command_id: str = "") -> Change:
    """销警: an officer ends the incident; the rule may still hold, so a later grade
    rise opens a new incident instead of being swallowed."""
    if command_id and command_id in w.commands:
        return Change(w, applied=False)
    _remember(w, command_id)
    if w.state == State.CLEARED:
        w.log(now_ms, "note", f"clear by {who} not needed: already cleared by {w.cleared_by}",
              actor=who, **phrases.clear_not_needed(who, w.cleared_by).kw())
        return Change(w, "note")
    was_pending = w.state == State.PENDING
    w.state, w.cleared_ms, w.cleared_by, w.esc, w.muted = State.CLEARED, now_ms, who, None, ""
    w.manual_grade, w.updated_ms = w.grade, now_ms
    w.log(now_ms, "cleared", f"cleared by {who} (销警): {reason or 'no reason given'}",
          grade=w.grade, actor=who,
          **phrases.manual_cleared(who, reason).kw())
    return Change(w, "cleared", notify=not was_pending)


def _remember(w: Warning, command_id: str) -> None:
    if command_id:
        w.commands = (w.commands + [command_id])[-50:]


def _words(w: Warning, ev: WarningEvent) -> None:
    """The event's reason: the expression (detail) and the words, in both languages."""
    w.reason, w.reason_zh, w.reason_en = ev.reason, ev.reason_zh, ev.reason_en
    w.measure_zh, w.measure_en = ev.measure_zh, ev.measure_en


def _rule_words(ev: WarningEvent) -> Text:
    """The event's reason in words; the expression for an event of before words."""
    return Text(ev.reason_zh or ev.reason, ev.reason_en or ev.reason)


def _said(ev: WarningEvent) -> dict[str, str]:
    return {"reason_zh": ev.reason_zh, "reason_en": ev.reason_en}
