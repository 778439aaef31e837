"""The warning state machine, pure, with time passed in.

Two layers:

* :class:`Lifecycle` runs inside the evaluator, right after the rules engine.
  It turns findings into transition events (pending, raised, upgraded,
  downgraded, cleared) and proposes an incident id. A finding that changes
  nothing returns no event, so re-delivered findings are harmless.
* The ``on_*`` functions below run in the warning book (the worker that owns
  the warning's group). They keep the authoritative :class:`Warning`: its
  state (pending → active → acknowledged → cleared), its grade, who
  acknowledged it, a manual clear (销警), and a timeline where every
  transition carries a readable reason. They are idempotent: replaying an
  event or a command after a restart changes nothing.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Callable

from yujing.domain import EventKind, Finding, Grade, WarningEvent, group_key, warning_key
from yujing.alerts.records import State, Warning

DONGGUAN = "441900"
_SEQ_SPACE = 10_000


@dataclass
class Active:
    incident: str
    grade: Grade
    since_ts: int
    pending: bool = False
    last_ts: int = 0    # newest finding applied: an older one is a replay, not a change


def incident_id(region_code: str, key: str, ts_ms: int,
                taken: Callable[[str], bool] = lambda i: False,
                shard: int = 0, shards: int = 1) -> str:
    """GB/T 35965.1-style id: region code, event date-time (UTC), a 4-digit sequence.

    The sequence starts from a hash of the warning key, so replaying the same
    readings gives the same id; ``taken`` probes past ids already issued in
    that second (two keys whose hashes collide get different ids). With
    ``shards`` > 1 the sequence is kept congruent to ``shard`` modulo
    ``shards``: each Kafka partition mints from its own residue class, so
    workers owning different partitions can never issue the same id without
    talking to each other. Past 10,000 incidents in one second of one shard
    the sequence grows a fifth digit rather than failing.
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(ts_ms // 1000))
    prefix = f"{region_code}-{stamp}-"
    shards = max(1, shards)
    slots = max(1, _SEQ_SPACE // shards)
    first = zlib.crc32(key.encode()) % _SEQ_SPACE % slots
    for i in range(slots):
        seq = ((first + i) % slots) * shards + shard
        iid = f"{prefix}{seq:04d}"
        if not taken(iid):
            return iid
    seq = slots * shards + shard
    while taken(iid := f"{prefix}{seq:04d}"):
        seq += shards
    return iid


@dataclass(frozen=True)
class RuleMeta:
    name: str
    hazard: str


class Lifecycle:
    """Findings → transition events, per warning key (rule@station).

    ``shard_of`` maps a warning key to the partition of the warning book that
    will own it, so the proposed incident id already obeys that partition's
    residue class and the book keeps it unchanged.
    """

    def __init__(self, region_code: str = DONGGUAN,
                 shard_of: Callable[[str], int] | None = None, shards: int = 1) -> None:
        self.region_code = region_code
        self.shard_of = shard_of
        self.shards = shards
        self.active: dict[str, Active] = {}
        self._issued: dict[int, set[str]] = {}   # event second -> ids minted in it
        # Set for a live lifecycle that starts empty although the book may hold warnings
        # raised before (a worker that found no checkpoint to restore): the first clear of
        # each key since start is passed on; the book ignores it when nothing is open.
        self.forward_first_clear = False
        self._looked_at: set[str] = set()

    def _mint(self, key: str, ts: int) -> str:
        sec = ts // 1000
        used = self._issued.setdefault(sec, set())
        shard = self.shard_of(key) if self.shard_of else 0
        iid = incident_id(self.region_code, key, ts, used.__contains__, shard, self.shards)
        used.add(iid)
        if len(self._issued) > 4096:  # keep a day of seconds at most; older ones cannot recur
            newest = max(self._issued)
            for s in [s for s in self._issued if s < newest - 86_400]:
                del self._issued[s]
        return iid

    def apply(self, f: Finding, meta: RuleMeta, now_ms: int) -> WarningEvent | None:
        key = warning_key(f.rule, f.station)
        cur = self.active.get(key)
        first_look = self.forward_first_clear and key not in self._looked_at
        if first_look:
            self._looked_at.add(key)
        if cur is not None:
            if f.ts < cur.last_ts:
                return None  # re-delivered: the engine only ever re-judges its newest time
            cur.last_ts = f.ts
        if f.grade > Grade.NONE and f.pending:
            if cur is not None and not cur.pending:
                return None  # a higher grade waiting for its for: while active: not yet news
            if cur is not None and cur.grade == f.grade:
                return None
            if cur is None:
                cur = self.active[key] = Active(self._mint(key, f.ts), f.grade, f.ts, True, f.ts)
                reason = f"pending {f.grade.label} (for: not met yet): {f.reason}"
            else:
                cur.grade = f.grade
                reason = f"pending {f.grade.label} (for: not met yet): {f.reason}"
            return self._event(EventKind.PENDING, key, cur, f, meta, Grade.NONE, reason, now_ms,
                               f.grade)
        if f.grade > Grade.NONE:
            if cur is None or cur.pending:
                if cur is None:
                    cur = Active(self._mint(key, f.ts), f.grade, f.ts, last_ts=f.ts)
                    reason = f"raised {f.grade.label}: {f.reason}"
                else:
                    reason = f"raised {f.grade.label} (for: met): {f.reason}"
                cur.pending, cur.grade = False, f.grade
                self.active[key] = cur
                return self._event(EventKind.RAISED, key, cur, f, meta, Grade.NONE, reason,
                                   now_ms, f.grade)
            if f.grade == cur.grade:
                return None
            previous = cur.grade
            kind = EventKind.UPGRADED if f.grade > previous else EventKind.DOWNGRADED
            reason = f"{kind.value} {previous.label} -> {f.grade.label}: {f.reason}"
            cur.grade = f.grade
            return self._event(kind, key, cur, f, meta, previous, reason, now_ms, f.grade)
        if f.clear and cur is not None:
            del self.active[key]
            if cur.pending:
                reason = f"ended while pending (for: never met): {f.reason}"
            else:
                reason = f"cleared after {cur.grade.label}: {f.reason}"
            return self._event(EventKind.CLEARED, key, cur, f, meta, cur.grade, reason, now_ms,
                               cur.grade)
        if f.clear and first_look:
            # An id of its own per key: the book remembers which warning a proposed id
            # stood for, and one shared id would close only the first key's warning.
            ghost = Active(f"{self.region_code}-unknown-{key}", Grade.NONE, f.ts)
            reason = f"clear condition holds at the first look since start: {f.reason}"
            return self._event(EventKind.CLEARED, key, ghost, f, meta, Grade.NONE, reason,
                               now_ms, Grade.NONE)
        return None

    def snapshot(self) -> dict:
        """The active warnings and the ids minted per second, as plain values."""
        return {"active": [[k, a.incident, int(a.grade), a.since_ts, a.pending, a.last_ts]
                           for k, a in self.active.items()],
                "issued": [[sec, sorted(ids)] for sec, ids in self._issued.items()],
                "looked_at": sorted(self._looked_at)}

    def restore(self, snap: dict) -> None:
        """Resume from :meth:`snapshot`: open warnings keep their incident ids, and replayed
        findings mint the same new ids as the first time (``_issued`` is part of it)."""
        self.active = {k: Active(iid, Grade(g), since, bool(pending), last)
                       for k, iid, g, since, pending, last in snap["active"]}
        self._issued = {int(sec): set(ids) for sec, ids in snap["issued"]}
        self._looked_at = set(snap["looked_at"])

    @staticmethod
    def _event(kind: EventKind, key: str, cur: Active, f: Finding, meta: RuleMeta,
               previous: Grade, reason: str, now_ms: int, grade: Grade) -> WarningEvent:
        return WarningEvent(kind=kind, key=key, incident=cur.incident, rule=f.rule,
                            rule_name=meta.name, hazard=meta.hazard, station=f.station,
                            grade=grade, previous=previous, ts=f.ts, value=f.value,
                            window=f.window, reason=reason, emitted_ms=now_ms)


# ---------------------------------------------------------------------------
# The book's state machine: one Warning per incident.

@dataclass
class Change:
    """What one event or command did to a warning, for the notification stages."""

    warning: Warning
    kind: str = ""           # raised, upgraded, downgraded, cleared, acknowledged, note, ...
    notify: bool = False     # tell people (the grade and escalation stages decide whom)
    reopened_from: str = ""  # a grade rise after a manual clear opens a new incident
    applied: bool = True     # False: a replay or a no-op, nothing to persist


def new_warning(ev: WarningEvent, incident: str, partition: int, now_ms: int) -> Warning:
    return Warning(incident=incident, key=ev.key, rule=ev.rule, rule_name=ev.rule_name,
                   hazard=ev.hazard, station=ev.station, station_name=ev.station_name,
                   town=ev.town, group=group_key(ev.town, ev.hazard, ev.station),
                   partition=partition, grade=0, first_ts=ev.ts, source_id=ev.incident,
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
    w.value, w.window, w.updated_ms = ev.value, ev.window, now_ms
    if ev.kind == EventKind.PENDING:
        if w.state == State.PENDING:
            w.grade = int(g)
            w.reason = ev.reason
            w.log(now_ms, "pending", ev.reason, grade=int(g), actor="rule")
            return Change(w, "pending")
        w.log(now_ms, "pending", f"{g.label} condition holds, waiting for its for: "
                                  f"({ev.reason})", grade=int(g), actor="rule")
        return Change(w, "note")
    if ev.kind in (EventKind.RAISED, EventKind.UPGRADED, EventKind.DOWNGRADED):
        if w.state == State.CLEARED:
            if w.cleared_by != "rule" and g > w.manual_grade:
                return Change(w, "reopen", notify=True)
            w.log(now_ms, "note", f"rule now at {g.label} after a manual clear at "
                                  f"{Grade(w.manual_grade).label}: not re-raised until the grade "
                                  f"rises or the rule clears ({ev.reason})",
                  grade=int(g), actor="rule")
            return Change(w, "note")
        if w.state == State.PENDING:
            w.state, w.grade, w.peak = State.ACTIVE, int(g), max(w.peak, int(g))
            w.raised_ms, w.reason = now_ms, ev.reason
            w.log(now_ms, "raised", ev.reason, grade=int(g), actor="rule")
            return Change(w, "raised", notify=True)
        if int(g) == w.grade:
            return Change(w, applied=False)
        previous = Grade(w.grade)
        w.grade, w.peak, w.reason = int(g), max(w.peak, int(g)), ev.reason
        if g > previous:
            if w.state == State.ACKNOWLEDGED:
                # The ack was for the lower grade; a worse hazard needs a fresh one.
                w.state = State.ACTIVE
                w.log(now_ms, "upgraded", f"{previous.label} -> {g.label}; acknowledgement by "
                      f"{w.acked_by} was for {previous.label}, a new one is needed: {ev.reason}",
                      grade=int(g), actor="rule")
            else:
                w.log(now_ms, "upgraded", ev.reason, grade=int(g), actor="rule")
            return Change(w, "upgraded", notify=True)
        w.log(now_ms, "downgraded", ev.reason, grade=int(g), actor="rule")
        return Change(w, "downgraded", notify=True)
    if ev.kind == EventKind.CLEARED:
        if w.state == State.CLEARED:
            if w.cleared_by != "rule":
                w.log(now_ms, "note", f"rule clear condition met after the manual clear: "
                                      f"{ev.reason}", actor="rule")
                w.manual_grade = 0
                return Change(w, "rule-cleared")
            return Change(w, applied=False)
        was_pending = w.state == State.PENDING
        w.state, w.cleared_ms, w.cleared_by, w.esc, w.muted = State.CLEARED, now_ms, "rule", None, ""
        w.reason = ev.reason  # the clear message quotes why it cleared, not why it was raised
        w.log(now_ms, "cleared", ev.reason, grade=w.grade, actor="rule")
        return Change(w, "cleared", notify=not was_pending)
    return Change(w, applied=False)


def acknowledge(w: Warning, who: str, note: str, now_ms: int, command_id: str = "") -> Change:
    """An officer takes the warning: escalation stops; the note goes on the timeline."""
    if command_id and command_id in w.commands:
        return Change(w, applied=False)
    _remember(w, command_id)
    if w.state != State.ACTIVE:
        why = {State.ACKNOWLEDGED: f"already acknowledged by {w.acked_by}",
               State.CLEARED: "already cleared", State.PENDING: "still pending, nobody was told"}
        w.log(now_ms, "note", f"acknowledgement by {who} not needed: {why[w.state]}"
              + (f"; note: {note}" if note else ""), actor=who)
        return Change(w, "note")
    w.state, w.acked_by, w.acked_ms, w.ack_note, w.esc = State.ACKNOWLEDGED, who, now_ms, note, None
    w.updated_ms = now_ms
    w.log(now_ms, "acknowledged", f"acknowledged by {who}" + (f": {note}" if note else "")
          + "; escalation stopped", grade=w.grade, actor=who)
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
              actor=who)
        return Change(w, "note")
    was_pending = w.state == State.PENDING
    w.state, w.cleared_ms, w.cleared_by, w.esc, w.muted = State.CLEARED, now_ms, who, None, ""
    w.manual_grade, w.updated_ms = w.grade, now_ms
    w.log(now_ms, "cleared", f"cleared by {who} (销警): {reason}", grade=w.grade, actor=who)
    return Change(w, "cleared", notify=not was_pending)


def _remember(w: Warning, command_id: str) -> None:
    if command_id:
        w.commands = (w.commands + [command_id])[-50:]
