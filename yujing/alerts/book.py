"""The warning book: one partition's incidents, and what happens to them. Pure, ``now`` passed in.

Inputs are evaluator events (``yujing.warnings``), officers' commands, ticks and
delivery results (``yujing.commands``); outputs are :class:`Effects`:
deliveries to hand to apprise and the incidents that changed (for
``yujing.incidents``, the console and CAP). State lives in a :class:`Store` of
plain mappings (:mod:`yujing.alerts.store`).

The book coordinates; the decisions live elsewhere: one incident's state
machine in :mod:`incidents`, escalation in :mod:`escalation`, grouping, the
notification stages and delivery bookkeeping in :mod:`outbox`, silences in
:mod:`silences`.

Incident identity (which incident an event belongs to, the ids of new ones) is
:mod:`identity`'s: the book is the one place that names incidents.

Routing: warnings and commands are keyed by their group (region + hazard), so
a group, its inhibition peers and its escalations all live in one partition.
"""

from __future__ import annotations

from collections.abc import Callable

from yujing.alerts import cap, escalation, incidents, phrases, reportback
from yujing.alerts import silences as sil
from yujing.alerts.identity import Identity
from yujing.alerts.outbox import Outbox
from yujing.alerts.phrases import Text
from yujing.alerts.records import Command, DeliveryResult, Notice, State, Warning, tick_time
from yujing.alerts.roster import Roster
from yujing.alerts.settings import AlertsSettings, GradePolicy
from yujing.alerts.stages import inhibition, mute, silence_hold
from yujing.alerts.store import Effects, Store, pkey
from yujing.clock import DEFAULT_ZONE, local_time
from yujing.domain import EventKind, Grade, WarningEvent

__all__ = ["Book", "Effects", "Store"]   # Effects and Store: what Book's callers handle


class Book:
    def __init__(self, settings: AlertsSettings, store: Store, roster: Roster | None = None,
                 fallback_urls: Callable[[int], list[str]] = lambda grade: [],
                 plan_of: Callable[[str], str] = lambda station: "",
                 link_for: Callable[[str, list[str], int], str | None] = lambda p, i, now: None,
                 partitions: int = 1, run_id: str = "run", lang: str = "zh",
                 zone: str = DEFAULT_ZONE,
                 report_link_for: Callable[[str, list[str], int], str | None] | None = None
                 ) -> None:
        self.s = settings
        self.store = store
        self.roster = roster
        self.partitions = partitions
        self.run_id = run_id
        self.retention_ms = settings.retention.ms
        self.reminder_ms = settings.silence_reminder.ms
        self.ids = Identity(store, settings.region_code, partitions)
        self.zone = zone  # the duty officers' time zone, for times in texts
        self.outbox = Outbox(settings, store, roster, fallback_urls, plan_of, link_for, run_id,
                             lang, zone, report_link_for)

    def _policy(self, w: Warning) -> GradePolicy:
        """Levels for a registered enterprise's station (enterprise → town → bureau), else the
        grade's A → B → leader chain."""
        ent = bool(self.roster and self.roster.org_team("enterprise", w.enterprise))
        return self.s.policy(w.grade, w.hazard, ent)

    # -- evaluator events --------------------------------------------------
    def on_event(self, p: int, ev: WarningEvent, now_ms: int) -> Effects:
        fx = Effects()
        w = self.ids.incident_of(p, ev)
        if w is None:
            if ev.kind == EventKind.CLEARED:
                return fx  # nothing open here (state expired, or never raised)
            w = self._open(p, ev, now_ms)[0]
        ch = incidents.on_event(w, ev, now_ms)
        if ch.kind == "reopen":
            old = w
            w, created = self._open(p, ev, now_ms, skip=old.incident)
            if created:
                old.reopened_as = w.incident
                old.log(now_ms, "note", f"grade rose to {Grade(ev.grade).label} after the "
                                        f"manual clear: reopened as {w.incident}", actor="rule",
                        **phrases.reopened(Grade(ev.grade), w.incident).kw())
                w.log(now_ms, "note", f"opened after the manual clear of {old.incident}",
                      actor="rule", **phrases.opened_after(old.incident).kw())
                self.store.incidents[pkey(p, old.incident)] = old
                fx.touch(old)
            ch = incidents.on_event(w, ev, now_ms)
        if not ch.applied:
            return fx
        self._after_change(p, w, ch.kind, ch.notify, now_ms, fx)
        return fx

    def _open(self, p: int, ev: WarningEvent, now_ms: int, skip: str = ""
              ) -> tuple[Warning, bool]:
        """The incident ``ev`` opens, and whether it is new: a reopen re-consumed after
        a kill finds the one it opened before."""
        iid, w = self.ids.mint(p, ev.key, ev.ts, skip)
        created = w is None
        if w is None:
            w = incidents.new_warning(ev, iid, p, now_ms)
        self.ids.opened(p, ev, w)
        return w, created

    def _after_change(self, p: int, w: Warning, kind: str, notify: bool, now_ms: int,
                      fx: Effects) -> None:
        """What follows a change of an incident: CAP, escalation, notices, bookkeeping."""
        st = self.store
        box = self.outbox
        policy = self._policy(w)
        if kind in ("raised", "upgraded"):
            cap.add_ref(w, kind, now_ms)
            notice = escalation.start(w, policy, kind, now_ms)
            notice.people = list(w.notified)
            w.muted = ""
            box.enqueue(p, w, notice, now_ms)
        elif kind == "downgraded":
            cap.add_ref(w, kind, now_ms)
            escalation.retime(w, policy)
            if w.notified:
                box.enqueue(p, w, Notice(w.incident, "downgraded", w.grade, w.reason, now_ms,
                                         people=list(w.notified), reason_zh=w.reason_zh,
                                         reason_en=w.reason_en), now_ms)
        elif kind == "cleared":
            if notify:
                cap.add_ref(w, kind, now_ms)
            if notify and w.notified:
                last = w.timeline[-1]
                box.enqueue(p, w, Notice(w.incident, "cleared", w.grade, last.reason, now_ms,
                                         people=list(w.notified), reason_zh=last.reason_zh,
                                         reason_en=last.reason_en), now_ms)
            if w.cleared_by == "rule":
                self.ids.closed(p, w)
            st.due[pkey(p, "gc:" + w.incident)] = now_ms + self.retention_ms
        elif kind == "rule-cleared":
            self.ids.closed(p, w)
        box.membership(p, w)
        st.save(p, w, fx)
        if kind in ("raised", "upgraded", "downgraded", "cleared"):
            box.flush_due(p, now_ms, fx, only="#" + w.group)

    # -- commands ----------------------------------------------------------
    def on_command(self, p: int, cmd: Command, now_ms: int) -> Effects:
        fx = Effects()
        if cmd.cmd == "tick":
            # Only this run's own ticks resend what a dead run left in flight: they come after
            # every result the dead run produced, so those are already recorded. A re-consumed
            # tick of the dead run could come before a result and resend a delivered message.
            return self.on_tick(p, tick_time(cmd.at, now_ms), own=cmd.actor in ("", self.run_id))
        if cmd.cmd == "result" and cmd.result is not None:
            return self.on_result(p, cmd.result, now_ms)
        if cmd.cmd in ("silence_add", "silence_expire"):
            self._silence(p, cmd, now_ms, fx)
            return fx
        w = self.store.incidents.get(pkey(p, cmd.incident))
        if w is None:
            fx.errors.append(f"{cmd.cmd} by {cmd.actor}: unknown incident {cmd.incident!r} in "
                             f"partition {p} (cleared more than {self.s.retention} ago, or a typo)")
            return fx
        if cmd.cmd == "ack":
            ch = incidents.acknowledge(w, cmd.actor, cmd.text, now_ms, cmd.id)
        elif cmd.cmd == "note":
            ch = incidents.add_note(w, cmd.actor, cmd.text, now_ms, cmd.id)
        elif cmd.cmd == "clear":
            refused = reportback.clear_refusal(w, self.s.reports)
            if refused is None:
                ch = incidents.manual_clear(w, cmd.actor, cmd.text, now_ms, cmd.id)
            else:
                ch = reportback.refuse_clear(w, cmd.actor, refused, now_ms, cmd.id)
                fx.errors.append(f"clear of {w.incident} by {cmd.actor} refused: {refused.en}")
        elif cmd.cmd == "report" and cmd.report is not None:
            ch = reportback.add_report(w, cmd.report, now_ms)
            if ch.applied and w.open and w.cap:
                cap.add_ref(w, "report", now_ms)   # an Update that carries the report
        else:
            fx.errors.append(f"unknown command {cmd.cmd!r}: use ack, note, clear, report, "
                             "silence_add or silence_expire")
            return fx
        if ch.applied:
            self._after_change(p, w, ch.kind, ch.notify, now_ms, fx)
        return fx

    def _silence(self, p: int, cmd: Command, now_ms: int, fx: Effects) -> None:
        st = self.store
        if cmd.cmd == "silence_add" and cmd.silence is not None:
            key = pkey(p, cmd.silence.id)
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
            key = pkey(p, cmd.silence_id)
            s = st.silences.get(key)
            if s is None:
                fx.errors.append(f"silence {cmd.silence_id!r} is unknown: `yujing silence list` "
                                 "shows the ids")
                return
            st.silences[key] = sil.expire(s, cmd.actor, cmd.text or "expired", now_ms)
            fx.silences.append(st.silences[key])

    # -- delivery results --------------------------------------------------
    def on_result(self, p: int, res: DeliveryResult, now_ms: int) -> Effects:
        return self.outbox.on_result(p, res, now_ms)

    # -- ticks -------------------------------------------------------------
    def on_tick(self, p: int, now_ms: int, own: bool = True) -> Effects:
        """Everything due by ``now_ms``: escalations, held warnings, group flushes, retention,
        in-flight resends (``own`` ticks only) and silence reminders."""
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
            self.outbox.flush(p, ident[1:], now_ms, fx)
        self.outbox.flush_due(p, now_ms, fx)  # groups that became due through escalations above
        if own:
            self.outbox.resend_in_flight(p, now_ms, fx)
        if p == 0:
            for k, s in list(st.silences.items()):
                if k.startswith(prefix) and sil.needs_reminder(s, now_ms, self.reminder_ms):
                    st.silences[k] = sil.reminded(s, now_ms)
                    fx.silences.append(st.silences[k])
                    t = phrases.silence_ending(s.id, ", ".join(str(m) for m in s.matchers),
                                               s.reason, local_time(s.ends_ms, self.zone))
                    fx.reminders.append((s.created_by, f"{t.zh}\n{t.en}"))
        return fx

    def _collect(self, p: int, iid: str, due_key: str) -> bool:
        """Forget a cleared incident after the retention period."""
        st = self.store
        del st.due[due_key]
        w = st.incidents.get(pkey(p, iid))
        if w is None or w.state != State.CLEARED:
            return False
        del st.incidents[pkey(p, iid)]
        self.ids.forget(p, w)
        return True

    def _due_incident(self, p: int, iid: str, now_ms: int, fx: Effects) -> None:
        """An incident's deadline: re-check a held one, or run its next escalation step."""
        st = self.store
        w = st.incidents.get(pkey(p, iid))
        if w is None:
            st.due.pop(pkey(p, iid), None)
            return
        if w.muted:
            self._recheck_held(p, w, now_ms, fx)
            return
        notice = escalation.due(w, self._policy(w), now_ms)
        if notice is not None:
            w.log(now_ms, notice.kind, notice.reason, grade=w.grade, actor="system",
                  reason_zh=notice.reason_zh, reason_en=notice.reason_en)
            self.outbox.enqueue(p, w, notice, now_ms)
        st.save(p, w, fx)

    def _recheck_held(self, p: int, w: Warning, now_ms: int, fx: Effects) -> None:
        """A muted incident: still inhibited or silenced, or released (escalation restarts)."""
        if not w.open:
            w.muted = ""
        else:
            still = inhibition(w, self.s.inhibit, self.store.peers(p, w))
            if not still:
                s = sil.silencing(self.store.silences_in(p), w.labels(), now_ms)
                still = silence_hold(s) if s else None
            if still:
                if mute(w, still, now_ms):
                    self.store.save(p, w, fx)
                return
            w.log(now_ms, "unmuted", f"no longer held ({w.muted}): notifying now",
                  **phrases.unheld(_held_words(w)).kw())
            w.muted = ""
            if w.state == State.ACTIVE:
                notice = escalation.start(w, self._policy(w), "unmuted", now_ms)
                notice.reason = f"no longer held: {notice.reason}"
                words = phrases.released(Text(notice.reason_zh, notice.reason_en))
                notice.reason_zh, notice.reason_en = words
                self.outbox.enqueue(p, w, notice, now_ms)
        self.store.save(p, w, fx)


def _held_words(w: Warning) -> Text:
    """Why the notifications were held, in words: the timeline entry that held them (a
    record of before words has only the English sentence)."""
    for e in reversed(w.timeline):
        if e.kind in ("inhibited", "silenced") and e.reason == w.muted:
            return Text(e.reason_zh or e.reason, e.reason_en or e.reason)
    return Text(w.muted, w.muted)
