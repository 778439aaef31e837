"""Grouping and delivery: notices wait in their group's outbox, go through the stages together,
and leave as one message per person. Pure, ``now`` passed in.

A group is the warnings of one region and hazard (``group_key``), so a storm
over 30 gauges is one message per person, not 30. A notice joins its group's
outbox and the flush is filed in ``due`` after the group wait; routine updates
of a group are spaced by the group interval, while a red warning, an
escalation or a reminder waits only the short group wait. A flush runs the
notification chain (grade → inhibit → silence → route, :mod:`stages`), splits
what is left per person and into chunks of ``max_per_message``, and records
each message as a :class:`Delivery` in flight before the edge hands it to
apprise.

Delivery bookkeeping: a delivery is stored with this run's id and removed when
its result comes back on the same partition of ``yujing.commands``. A tick
after a restart therefore sees every result produced before the crash first;
what is still in flight from a dead run was cut off mid-send and is sent again
(at most that one message).
"""

from __future__ import annotations

from collections.abc import Callable

from yujing.alerts import phrases
from yujing.alerts.records import Delivery, DeliveryResult, Group, Notice, State, Warning
from yujing.alerts.reportback import report_due
from yujing.alerts.roster import Roster
from yujing.alerts.settings import AlertsSettings
from yujing.alerts.stages import (
    Item,
    Recipient,
    Stage,
    chain,
    grade_stage,
    inhibit_stage,
    route_stage,
    silence_stage,
)
from yujing.alerts.store import Effects, Store, pkey
from yujing.alerts.templates import Line, render
from yujing.clock import DEFAULT_ZONE
from yujing.domain import Grade


class Outbox:
    """The groups of one book: enqueue notices, flush them through the stages, deliver."""

    def __init__(self, settings: AlertsSettings, store: Store, roster: Roster | None,
                 fallback_urls: Callable[[int], list[str]], plan_of: Callable[[str], str],
                 link_for: Callable[[str, list[str], int], str | None], run_id: str,
                 lang: str, zone: str = DEFAULT_ZONE,
                 report_link_for: Callable[[str, list[str], int], str | None] | None = None
                 ) -> None:
        self.s = settings
        self.store = store
        self.roster = roster
        self.fallback_urls = fallback_urls
        self.plan_of = plan_of
        self.link_for = link_for
        self.report_link_for = report_link_for
        self.run_id = run_id
        self.lang = lang
        self.zone = zone
        self.min_grade = int(Grade.parse(settings.min_grade))

    # -- grouping ----------------------------------------------------------
    def _group(self, p: int, w: Warning) -> Group:
        g = self.store.groups.get(pkey(p, w.group))
        if g is None:
            g = Group(w.group, w.town, w.hazard, p)
        return g

    def enqueue(self, p: int, w: Warning, notice: Notice, now_ms: int) -> None:
        """Put a notice in its group's outbox and file (or bring forward) the group's flush."""
        g = self._group(p, w)
        if not g.outbox:
            g.first_ms = now_ms
        g.outbox.append(notice)
        self.store.groups[pkey(p, g.key)] = g
        wait = self.s.grouping.wait_ms
        interval = self.s.grouping.interval_ms
        at = g.first_ms + wait
        # The interval spaces out routine updates of a group; a red warning, an escalation
        # or a reminder only waits the short group wait (an escalation is already late), and
        # a new red (raised or upgraded) not even that: delivery starts with its event.
        urgent = notice.grade >= Grade.RED or notice.kind in ("escalated", "reminder")
        if g.last_flush_ms and not urgent:
            at = max(at, g.last_flush_ms + interval)
        if notice.grade >= Grade.RED and notice.kind in ("raised", "upgraded"):
            at = now_ms  # a new red skips the group wait too: it goes with this very event
        current = self.store.due.get(pkey(p, "#" + g.key))
        if current is not None and current < at:
            at = current
        self.store.due[pkey(p, "#" + g.key)] = at

    def membership(self, p: int, w: Warning) -> None:
        """An open incident is a member of its group (an inhibition peer); a closed one not."""
        g = self._group(p, w)
        if w.open and w.incident not in g.members:
            g.members.append(w.incident)
        elif not w.open and w.incident in g.members:
            g.members.remove(w.incident)
        if g.members or g.outbox:
            self.store.groups[pkey(p, g.key)] = g
        elif pkey(p, g.key) in self.store.groups:
            del self.store.groups[pkey(p, g.key)]

    # -- flush: outbox → stages → deliveries --------------------------------
    def chain(self, p: int) -> Stage:
        return chain(grade_stage(self.min_grade, self.s.notify_downgrades),
                     inhibit_stage(self.s.inhibit, lambda w: self.store.peers(p, w)),
                     silence_stage(lambda: self.store.silences_in(p)),
                     route_stage(self.roster, self.fallback_urls))

    def flush_due(self, p: int, now_ms: int, fx: Effects, only: str | None = None) -> None:
        """Flush the groups whose time has come (or just ``only``, a ``#group`` id)."""
        prefix = f"{p}:"
        keys = [pkey(p, only)] if only else [k for k in self.store.due
                                             if k.startswith(prefix + "#")]
        for k in keys:
            at = self.store.due.get(k)
            if at is not None and at <= now_ms:
                self.flush(p, k[len(prefix) + 1:], now_ms, fx)

    def flush(self, p: int, gkey: str, now_ms: int, fx: Effects) -> None:
        st = self.store
        st.due.pop(pkey(p, "#" + gkey), None)
        g = st.groups.get(pkey(p, gkey))
        if g is None or not g.outbox:
            return
        items = []
        for n in g.outbox:
            w = fx.changed.get(n.incident) or st.incidents.get(pkey(p, n.incident))
            if w is not None:
                items.append(Item(n, w))
        g.outbox, g.first_ms, g.last_flush_ms = [], 0, now_ms
        g.seq += 1
        touched = {it.warning.incident: it.warning for it in items}
        items = self.chain(p)(items, now_ms)
        size = self.s.grouping.max_per_message
        for rec, lst in _per_person(items).values():
            for c in range(0, len(lst), size):
                self._deliver(p, g, rec, lst[c:c + size], c // size, now_ms, fx)
        for w in touched.values():
            st.save(p, w, fx)
        if g.members or g.outbox:
            st.groups[pkey(p, gkey)] = g
        else:
            st.groups.pop(pkey(p, gkey), None)

    def _deliver(self, p: int, g: Group, rec: Recipient, chunk: list[Item], n: int, now_ms: int,
                 fx: Effects) -> None:
        lines = [Line(it.notice.kind, it.warning, it.notice.reason, it.notice.reason_zh,
                      it.notice.reason_en) for it in chunk]
        incidents = list(dict.fromkeys(it.warning.incident for it in chunk))
        actionable = [it.warning.incident for it in chunk if it.warning.state == State.ACTIVE]
        link = self.link_for(rec.id, actionable, now_ms) if actionable else None
        msg = render(lines, rec.name, rec.roles, link, self.plan_of, now_ms, self.lang,
                     self.zone, self._report_links(rec.id, chunk, now_ms))
        did = f"{g.key}:{g.seq}:{now_ms}:{rec.id}:{n}"
        d = Delivery(id=did, group=g.key, partition=p, person=rec.id, person_name=rec.name,
                     roles=list(rec.roles), contacts=list(rec.contacts), incidents=incidents,
                     kinds=[it.notice.kind for it in chunk], message=msg, run=self.run_id,
                     created_ms=now_ms, notice_at=[it.notice.at for it in chunk])
        self.store.deliveries[pkey(p, did)] = d
        fx.dispatch.append(d)
        for it in chunk:
            w = it.warning
            if not rec.contacts:
                w.log(now_ms, "failed", f"{rec.name} ({'/'.join(rec.roles)}) has no contacts: "
                      "add some to the roster", actor=rec.id, ok=False,
                      **phrases.no_contacts(rec.name, rec.roles).kw())

    def _report_links(self, person: str, chunk: list[Item], now_ms: int) -> dict[str, str]:
        """Report-back links for the warnings of ``chunk`` that still need a report."""
        if self.report_link_for is None:
            return {}
        out = {}
        for it in chunk:
            w = it.warning
            if w.incident not in out and report_due(w, self.s.reports):
                link = self.report_link_for(person, [w.incident], now_ms)
                if link:
                    out[w.incident] = link
        return out

    # -- in flight and results ---------------------------------------------
    def resend_in_flight(self, p: int, now_ms: int, fx: Effects) -> None:
        """Send again what a dead run handed to apprise but never got a result for."""
        prefix = f"{p}:"
        for k, d in list(self.store.deliveries.items()):
            if k.startswith(prefix) and d.run != self.run_id:
                self._redispatch(p, d, now_ms, fx)

    def _redispatch(self, p: int, d: Delivery, now_ms: int, fx: Effects) -> None:
        st = self.store
        open_ones = [i for i in d.incidents
                     if (w := st.incidents.get(pkey(p, i))) is not None
                     and (w.state != State.CLEARED or "cleared" in d.kinds)]
        if not open_ones:
            del st.deliveries[pkey(p, d.id)]
            return
        d.run = self.run_id
        d.redispatched += 1
        st.deliveries[pkey(p, d.id)] = d
        fx.dispatch.append(d)
        for i in open_ones:
            w = st.incidents[pkey(p, i)]
            w.log(now_ms, "note", f"message to {d.person_name} was in flight when its worker "
                  "stopped: sent again (it may arrive twice)", actor="system",
                  **phrases.resent(d.person_name).kw())
            st.save(p, w, fx)

    def on_result(self, p: int, res: DeliveryResult, now_ms: int) -> Effects:
        """A delivery's outcome onto the timelines of its incidents; who heard is remembered."""
        fx = Effects()
        st = self.store
        d = st.deliveries.get(pkey(p, res.delivery))
        if d is None:
            return fx  # a duplicate result: already recorded
        del st.deliveries[pkey(p, res.delivery)]
        roles = "/".join(d.roles)
        failed = [a for a in res.attempts if not a.ok]
        for iid, kind in zip(d.incidents, d.kinds + [""] * len(d.incidents)):
            w = st.incidents.get(pkey(p, iid))
            if w is None:
                continue
            for a in failed:
                w.log(a.at, "failed", f"{d.person_name} ({roles}) via {a.channel}: {a.error}",
                      actor=d.person, channel=a.channel, ok=False,
                      **phrases.attempt_failed(d.person_name, d.roles, a.channel, a.error).kw())
            if res.ok:
                fell = f" after {len(failed)} failed attempt(s)" if failed else ""
                w.log(res.at, "notified", f"{d.person_name} ({roles}) via {res.channel}{fell}: "
                      f"{kind}", actor=d.person, channel=res.channel, ok=True,
                      **phrases.notified(d.person_name, d.roles, res.channel, len(failed),
                                         kind).kw())
                if d.person not in w.notified:
                    w.notified.append(d.person)
            else:
                w.log(res.at, "failed", f"{d.person_name} ({roles}) could not be reached on any "
                      f"of {len(d.contacts)} contact(s): escalation goes on", actor=d.person,
                      ok=False, **phrases.unreachable(d.person_name, d.roles, len(d.contacts)).kw())
            st.save(p, w, fx)
        return fx


def _per_person(items: list[Item]) -> dict[str, tuple[Recipient, list[Item]]]:
    """Each recipient once, with every role they hold across the items, and their items."""
    per_person: dict[str, tuple[Recipient, list[Item]]] = {}
    for it in items:
        for r in it.recipients:
            rec, lst = per_person.setdefault(r.id, (r, []))
            for role in r.roles:
                if role not in rec.roles:
                    rec.roles.append(role)
            lst.append(it)
    return per_person
