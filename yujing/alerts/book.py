"""The warning book: one partition's incidents, groups, deliveries and silences. Pure.

Inputs are evaluator events (``yujing.warnings``), officers' commands, ticks and
delivery results (``yujing.commands``), each with ``now`` passed in; outputs
are deliveries to hand to apprise and the incidents that changed (for
``yujing.incidents``, the console and CAP). State lives in a :class:`Store` of
plain mappings, which the worker backs with changelog Faust tables, so a
restarted worker resumes every escalation deadline and knows what it already
delivered. Every key carries the partition (``"3:..."``) because one worker
holds several partitions in one table.

Routing: warnings and commands are keyed by their group (region + hazard), so
a group, its inhibition peers and its escalations all live in one partition.

Delivery bookkeeping: a delivery is stored as in flight (with this run's id)
before it is handed to apprise and removed when its result comes back on the
same partition of ``yujing.commands``. A tick after a restart therefore sees
every result produced before the crash first; what is still in flight from a
dead run was cut off mid-send and is sent again (at most that one message).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Callable

from yujing.domain import EventKind, Grade, WarningEvent
from yujing.alerts import escalation, lifecycle, silences as sil
from yujing.alerts.records import (CapRef, Command, Delivery, DeliveryResult, Group, Notice, Silence, State,
                    Warning)
from yujing.alerts.roster import Roster, redact
from yujing.alerts.settings import AlertsSettings
from yujing.alerts.stages import Item, chain, grade_stage, inhibit_stage, inhibited_by, route_stage, silence_stage
from yujing.alerts.templates import Line, render


@dataclass
class Store:
    """The book's tables. Keys are ``"<partition>:<id>"``."""

    incidents: MutableMapping[str, Warning] = field(default_factory=dict)
    open: MutableMapping[str, str] = field(default_factory=dict)       # warning key -> incident
    alias: MutableMapping[str, str] = field(default_factory=dict)      # proposed id -> incident
    groups: MutableMapping[str, Group] = field(default_factory=dict)
    deliveries: MutableMapping[str, Delivery] = field(default_factory=dict)
    silences: MutableMapping[str, Silence] = field(default_factory=dict)
    due: MutableMapping[str, int] = field(default_factory=dict)        # what to look at, when


@dataclass
class Effects:
    dispatch: list[Delivery] = field(default_factory=list)
    changed: dict[str, Warning] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    reminders: list[tuple[str, str]] = field(default_factory=list)    # (person, text)
    silences: list[Silence] = field(default_factory=list)             # changed ones
    removed: list[str] = field(default_factory=list)                  # incidents past retention

    def touch(self, w: Warning) -> None:
        self.changed[w.incident] = w


def _k(p: int, ident: str) -> str:
    return f"{p}:{ident}"


class Book:
    def __init__(self, settings: AlertsSettings, store: Store, roster: Roster | None = None,
                 fallback_urls: Callable[[int], list[str]] = lambda grade: [],
                 plan_of: Callable[[str], str] = lambda station: "",
                 link_for: Callable[[str, list[str], int], str | None] = lambda p, i, now: None,
                 partitions: int = 1, run_id: str = "run", lang: str = "zh") -> None:
        self.s = settings
        self.store = store
        self.roster = roster
        self.plan_of = plan_of
        self.link_for = link_for
        self.partitions = partitions
        self.run_id = run_id
        self.lang = lang
        self.fallback_urls = fallback_urls
        self.min_grade = int(Grade.parse(settings.min_grade))
        self.retention_ms = settings.retention.ms
        self.reminder_ms = settings.silence_reminder.ms

    # -- helpers -----------------------------------------------------------
    def _save(self, p: int, w: Warning, fx: Effects) -> None:
        self.store.incidents[_k(p, w.incident)] = w
        fx.touch(w)
        dk = _k(p, w.incident)
        if w.muted and w.open:
            self.store.due[dk] = 0  # re-check at every tick: a silence ends, a source clears
        elif w.esc is not None and w.esc.next_ms:
            self.store.due[dk] = w.esc.next_ms
        elif dk in self.store.due:
            del self.store.due[dk]

    def _silences(self, p: int) -> list[Silence]:
        prefix = f"{p}:"
        return [s for k, s in self.store.silences.items() if k.startswith(prefix)]

    def _peers(self, p: int) -> Callable[[Warning], list[Warning]]:
        def peers(w: Warning) -> list[Warning]:
            g = self.store.groups.get(_k(p, w.group))
            if g is None:
                return []
            out = []
            for iid in g.members:
                x = self.store.incidents.get(_k(p, iid))
                if x is not None:
                    out.append(x)
            return out
        return peers

    def _chain(self, p: int):  # noqa: ANN202
        return chain(grade_stage(self.min_grade, self.s.notify_downgrades),
                     inhibit_stage(self.s.inhibit, self._peers(p)),
                     silence_stage(lambda: self._silences(p)),
                     route_stage(self.roster, self.fallback_urls))

    def _mint(self, p: int, ev: WarningEvent) -> str:
        taken = lambda iid: _k(p, iid) in self.store.incidents  # noqa: E731
        return lifecycle.incident_id(self.s.region_code, ev.key, ev.ts, taken, p, self.partitions)

    def _group(self, p: int, w: Warning) -> Group:
        g = self.store.groups.get(_k(p, w.group))
        if g is None:
            g = Group(w.group, w.town, w.hazard, p)
        return g

    def _enqueue(self, p: int, w: Warning, notice: Notice, now_ms: int) -> None:
        g = self._group(p, w)
        if not g.outbox:
            g.first_ms = now_ms
        g.outbox.append(notice)
        self.store.groups[_k(p, g.key)] = g
        wait = self.s.grouping.wait_ms
        interval = self.s.grouping.interval_ms
        at = g.first_ms + wait
        # The interval spaces out routine updates of a group; a red warning, an escalation
        # or a reminder only waits the short group wait (an escalation is already late).
        urgent = notice.grade >= Grade.RED or notice.kind in ("escalated", "reminder")
        if g.last_flush_ms and not urgent:
            at = max(at, g.last_flush_ms + interval)
        current = self.store.due.get(_k(p, "#" + g.key))
        if current is not None and current < at:
            at = current
        self.store.due[_k(p, "#" + g.key)] = at

    def _membership(self, p: int, w: Warning) -> None:
        g = self._group(p, w)
        if w.open and w.incident not in g.members:
            g.members.append(w.incident)
        elif not w.open and w.incident in g.members:
            g.members.remove(w.incident)
        if g.members or g.outbox:
            self.store.groups[_k(p, g.key)] = g
        elif _k(p, g.key) in self.store.groups:
            del self.store.groups[_k(p, g.key)]

    def _cap(self, w: Warning, kind: str, now_ms: int) -> None:
        msg_type = {"raised": "Alert", "cleared": "Cancel"}.get(kind, "Update")
        if kind == "raised" and w.cap:
            msg_type = "Update"
        w.cap.append(CapRef(len(w.cap) + 1, msg_type, now_ms, w.grade))

    # -- evaluator events --------------------------------------------------
    def on_event(self, p: int, ev: WarningEvent, now_ms: int) -> Effects:
        fx = Effects()
        st = self.store
        w = None
        known = st.alias.get(_k(p, "src:" + ev.incident))
        if known:
            w = st.incidents.get(_k(p, known))
        if w is None:
            oid = st.open.get(_k(p, ev.key))
            w = st.incidents.get(_k(p, oid)) if oid else None
            if w is not None and w.state == State.CLEARED and w.cleared_by == "rule":
                w = None
        if w is None:
            if ev.kind == EventKind.CLEARED:
                return fx  # nothing open here (state expired, or never raised)
            w = self._open(p, ev, now_ms)
        elif not known:
            st.alias[_k(p, "src:" + ev.incident)] = w.incident
        ch = lifecycle.on_event(w, ev, now_ms)
        if ch.kind == "reopen":
            old = w
            w = self._open(p, ev, now_ms)
            old.log(now_ms, "note", f"grade rose to {Grade(ev.grade).label} after the manual "
                                    f"clear: reopened as {w.incident}", actor="rule")
            w.log(now_ms, "note", f"opened after the manual clear of {old.incident}", actor="rule")
            st.incidents[_k(p, old.incident)] = old
            fx.touch(old)
            ch = lifecycle.on_event(w, ev, now_ms)
        if not ch.applied:
            return fx
        self._after_change(p, w, ch.kind, ch.notify, now_ms, fx)
        return fx

    def _open(self, p: int, ev: WarningEvent, now_ms: int) -> Warning:
        iid = self._mint(p, ev)
        w = lifecycle.new_warning(ev, iid, p, now_ms)
        self.store.alias[_k(p, "src:" + ev.incident)] = iid
        self.store.open[_k(p, ev.key)] = iid
        self.store.incidents[_k(p, iid)] = w
        return w

    def _after_change(self, p: int, w: Warning, kind: str, notify: bool, now_ms: int,
                      fx: Effects) -> None:
        st = self.store
        policy = self.s.policy(w.grade)
        if kind in ("raised", "upgraded"):
            self._cap(w, kind, now_ms)
            notice = escalation.start(w, policy, kind, now_ms)
            notice.people = list(w.notified)
            w.muted = ""
            self._enqueue(p, w, notice, now_ms)
        elif kind == "downgraded":
            self._cap(w, kind, now_ms)
            escalation.retime(w, policy)
            if w.notified:
                self._enqueue(p, w, Notice(w.incident, "downgraded", w.grade, w.reason, now_ms,
                                           people=list(w.notified)), now_ms)
        elif kind == "cleared":
            if notify:
                self._cap(w, kind, now_ms)
            if notify and w.notified:
                self._enqueue(p, w, Notice(w.incident, "cleared", w.grade,
                                           w.timeline[-1].reason, now_ms,
                                           people=list(w.notified)), now_ms)
            if w.cleared_by == "rule" and st.open.get(_k(p, w.key)) == w.incident:
                del st.open[_k(p, w.key)]
            st.due[_k(p, "gc:" + w.incident)] = now_ms + self.retention_ms
        elif kind == "rule-cleared":
            if st.open.get(_k(p, w.key)) == w.incident:
                del st.open[_k(p, w.key)]
        self._membership(p, w)
        self._save(p, w, fx)
        if kind in ("raised", "upgraded", "downgraded", "cleared"):
            self._flush_due(p, now_ms, fx, only="#" + w.group)

    # -- commands ----------------------------------------------------------
    def on_command(self, p: int, cmd: Command, now_ms: int) -> Effects:
        fx = Effects()
        if cmd.cmd == "tick":
            # Only this run's own ticks resend what a dead run left in flight: they come after
            # every result the dead run produced, so those are already recorded. A re-consumed
            # tick of the dead run could come before a result and resend a delivered message.
            return self.on_tick(p, now_ms, own=cmd.actor in ("", self.run_id))
        if cmd.cmd == "result" and cmd.result is not None:
            return self.on_result(p, cmd.result, now_ms)
        if cmd.cmd in ("silence_add", "silence_expire"):
            self._silence(p, cmd, now_ms, fx)
            return fx
        w = self.store.incidents.get(_k(p, cmd.incident))
        if w is None:
            fx.errors.append(f"{cmd.cmd} by {cmd.actor}: unknown incident {cmd.incident!r} in "
                             f"partition {p} (cleared more than {self.s.retention} ago, or a typo)")
            return fx
        if cmd.cmd == "ack":
            ch = lifecycle.acknowledge(w, cmd.actor, cmd.text, now_ms, cmd.id)
        elif cmd.cmd == "note":
            ch = lifecycle.add_note(w, cmd.actor, cmd.text, now_ms, cmd.id)
        elif cmd.cmd == "clear":
            ch = lifecycle.manual_clear(w, cmd.actor, cmd.text or "no reason given", now_ms,
                                        cmd.id)
        else:
            fx.errors.append(f"unknown command {cmd.cmd!r}: use ack, note, clear, silence_add or "
                             "silence_expire")
            return fx
        if ch.applied:
            self._after_change(p, w, ch.kind, ch.notify, now_ms, fx)
        return fx

    def _silence(self, p: int, cmd: Command, now_ms: int, fx: Effects) -> None:
        st = self.store
        if cmd.cmd == "silence_add" and cmd.silence is not None:
            key = _k(p, cmd.silence.id)
            existing = st.silences.get(key)
            if existing is not None and any(a.at == now_ms and a.actor == cmd.actor
                                            for a in existing.audit):
                return
            try:
                st.silences[key] = sil.add(existing, cmd.silence, cmd.actor, now_ms)
                fx.silences.append(st.silences[key])
            except ValueError as exc:
                fx.errors.append(str(exc))
        elif cmd.cmd == "silence_expire":
            key = _k(p, cmd.silence_id)
            s = st.silences.get(key)
            if s is None:
                fx.errors.append(f"silence {cmd.silence_id!r} is unknown: `yujing silence list` "
                                 "shows the ids")
                return
            st.silences[key] = sil.expire(s, cmd.actor, cmd.text or "expired", now_ms)
            fx.silences.append(st.silences[key])

    # -- ticks -------------------------------------------------------------
    def on_tick(self, p: int, now_ms: int, own: bool = True) -> Effects:
        fx = Effects()
        st = self.store
        prefix = f"{p}:"
        due = sorted((at, k) for k, at in list(st.due.items())
                     if k.startswith(prefix) and at <= now_ms)
        groups = []
        for _, k in due:
            ident = k[len(prefix):]
            if ident.startswith("#"):
                groups.append(ident)
            elif ident.startswith("gc:"):
                if self._collect(p, ident[3:], k):
                    fx.removed.append(ident[3:])
            else:
                self._due_incident(p, ident, now_ms, fx)
        for ident in groups:
            self._flush(p, ident[1:], now_ms, fx)
        self._flush_due(p, now_ms, fx)  # groups that became due through escalations above
        for k, d in list(st.deliveries.items()) if own else []:
            if k.startswith(prefix) and d.run != self.run_id:
                self._redispatch(p, d, now_ms, fx)
        if p == 0:
            for k, s in list(st.silences.items()):
                if k.startswith(prefix) and sil.needs_reminder(s, now_ms, self.reminder_ms):
                    st.silences[k] = sil.reminded(s, now_ms)
                    fx.silences.append(st.silences[k])
                    fx.reminders.append((s.created_by, f"{sil.describe(s)} ends at "
                                         f"{self._local(s.ends_ms)}: extend it or let it end"))
        return fx

    def _local(self, ms: int) -> str:
        from yujing.alerts.templates import local_time
        return local_time(ms)

    def _collect(self, p: int, iid: str, due_key: str) -> bool:
        """Forget a cleared incident after the retention period."""
        st = self.store
        del st.due[due_key]
        w = st.incidents.get(_k(p, iid))
        if w is None or w.state != State.CLEARED:
            return False
        del st.incidents[_k(p, iid)]
        if st.alias.get(_k(p, "src:" + w.source_id)) == iid:
            del st.alias[_k(p, "src:" + w.source_id)]
        if st.open.get(_k(p, w.key)) == iid:
            del st.open[_k(p, w.key)]
        return True

    def _due_incident(self, p: int, iid: str, now_ms: int, fx: Effects) -> None:
        w = self.store.incidents.get(_k(p, iid))
        if w is None:
            self.store.due.pop(_k(p, iid), None)
            return
        if w.muted:
            if not w.open:
                w.muted = ""
            else:
                still = inhibited_by(w, self.s.inhibit, self._peers(p)(w))
                if not still:
                    s = sil.silencing(self._silences(p), w.labels(), now_ms)
                    still = f"silenced by {sil.describe(s)}" if s else ""
                if still:
                    if still != w.muted:
                        w.muted = still
                        w.log(now_ms, still.split(" ", 1)[0], still)
                        self._save(p, w, fx)
                    return
                w.log(now_ms, "unmuted", f"no longer held ({w.muted}): notifying now")
                w.muted = ""
                if w.state == State.ACTIVE:
                    notice = escalation.start(w, self.s.policy(w.grade), "unmuted", now_ms)
                    notice.reason = f"no longer held: {notice.reason}"
                    self._enqueue(p, w, notice, now_ms)
            self._save(p, w, fx)
            return
        notice = escalation.due(w, self.s.policy(w.grade), now_ms)
        if notice is not None:
            w.log(now_ms, notice.kind, notice.reason, grade=w.grade, actor="system")
            self._enqueue(p, w, notice, now_ms)
        self._save(p, w, fx)

    # -- groups → deliveries ----------------------------------------------
    def _flush_due(self, p: int, now_ms: int, fx: Effects, only: str | None = None) -> None:
        prefix = f"{p}:"
        keys = [_k(p, only)] if only else [k for k in self.store.due if k.startswith(prefix + "#")]
        for k in keys:
            at = self.store.due.get(k)
            if at is not None and at <= now_ms:
                self._flush(p, k[len(prefix) + 1:], now_ms, fx)

    def _flush(self, p: int, gkey: str, now_ms: int, fx: Effects) -> None:
        st = self.store
        st.due.pop(_k(p, "#" + gkey), None)
        g = st.groups.get(_k(p, gkey))
        if g is None or not g.outbox:
            return
        items = []
        for n in g.outbox:
            w = fx.changed.get(n.incident) or st.incidents.get(_k(p, n.incident))
            if w is not None:
                items.append(Item(n, w))
        g.outbox, g.first_ms, g.last_flush_ms = [], 0, now_ms
        g.seq += 1
        touched = {it.warning.incident: it.warning for it in items}
        items = self._chain(p)(items, now_ms)
        per_person: dict[str, tuple[object, list[Item]]] = {}
        for it in items:
            for r in it.recipients:
                rec, lst = per_person.setdefault(r.id, (r, []))
                for role in r.roles:
                    if role not in rec.roles:
                        rec.roles.append(role)
                lst.append(it)
        size = self.s.grouping.max_per_message
        for pid, (rec, lst) in per_person.items():
            for c in range(0, len(lst), size):
                chunk = lst[c:c + size]
                self._deliver(p, g, rec, chunk, c // size, now_ms, fx)
        for w in touched.values():
            self._save(p, w, fx)
        if g.members or g.outbox:
            st.groups[_k(p, gkey)] = g
        else:
            st.groups.pop(_k(p, gkey), None)

    def _deliver(self, p: int, g: Group, rec, chunk: list[Item], n: int, now_ms: int,  # noqa: ANN001
                 fx: Effects) -> None:
        lines = [Line(it.notice.kind, it.warning, it.notice.reason) for it in chunk]
        incidents = list(dict.fromkeys(it.warning.incident for it in chunk))
        actionable = [it.warning.incident for it in chunk if it.warning.state == State.ACTIVE]
        link = self.link_for(rec.id, actionable, now_ms) if actionable else None
        msg = render(lines, rec.name, rec.roles, link, self.plan_of, now_ms, self.lang)
        did = f"{g.key}:{g.seq}:{now_ms}:{rec.id}:{n}"
        d = Delivery(id=did, group=g.key, partition=p, person=rec.id, person_name=rec.name,
                     roles=list(rec.roles), contacts=list(rec.contacts), incidents=incidents,
                     kinds=[it.notice.kind for it in chunk], message=msg, run=self.run_id,
                     created_ms=now_ms, notice_at=[it.notice.at for it in chunk])
        self.store.deliveries[_k(p, did)] = d
        fx.dispatch.append(d)
        for it in chunk:
            w = it.warning
            if not rec.contacts:
                w.log(now_ms, "failed", f"{rec.name} ({'/'.join(rec.roles)}) has no contacts: "
                      "add some to the roster", actor=rec.id, ok=False)

    def _redispatch(self, p: int, d: Delivery, now_ms: int, fx: Effects) -> None:
        st = self.store
        open_ones = [i for i in d.incidents
                     if (w := st.incidents.get(_k(p, i))) is not None
                     and (w.state != State.CLEARED or "cleared" in d.kinds)]
        if not open_ones:
            del st.deliveries[_k(p, d.id)]
            return
        d.run = self.run_id
        d.redispatched += 1
        st.deliveries[_k(p, d.id)] = d
        fx.dispatch.append(d)
        for i in open_ones:
            w = st.incidents[_k(p, i)]
            w.log(now_ms, "note", f"message to {d.person_name} was in flight when its worker "
                  "stopped: sent again (it may arrive twice)", actor="system")
            self._save(p, w, fx)

    # -- delivery results --------------------------------------------------
    def on_result(self, p: int, res: DeliveryResult, now_ms: int) -> Effects:
        fx = Effects()
        st = self.store
        d = st.deliveries.get(_k(p, res.delivery))
        if d is None:
            return fx  # a duplicate result: already recorded
        del st.deliveries[_k(p, res.delivery)]
        roles = "/".join(d.roles)
        failed = [a for a in res.attempts if not a.ok]
        for iid, kind in zip(d.incidents, d.kinds + [""] * len(d.incidents)):
            w = st.incidents.get(_k(p, iid))
            if w is None:
                continue
            for a in failed:
                w.log(a.at, "failed", f"{d.person_name} ({roles}) via {a.channel}: {a.error}",
                      actor=d.person, channel=a.channel, ok=False)
            if res.ok:
                fell = f" after {len(failed)} failed attempt(s)" if failed else ""
                w.log(res.at, "notified", f"{d.person_name} ({roles}) via {res.channel}{fell}: "
                      f"{kind}", actor=d.person, channel=res.channel, ok=True)
                if d.person not in w.notified:
                    w.notified.append(d.person)
            else:
                w.log(res.at, "failed", f"{d.person_name} ({roles}) could not be reached on any "
                      f"of {len(d.contacts)} contact(s): escalation goes on", actor=d.person,
                      ok=False)
            self._save(p, w, fx)
        return fx


def redacted(url: str) -> str:
    return redact(url)
