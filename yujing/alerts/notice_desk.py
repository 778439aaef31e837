"""The notice desk: what the worker does with notice commands and ticks. Pure, ``now`` passed in.

Notices travel on ``yujing.commands`` partition 0 (a city sends a few notices a day:
one partition keeps their order simple) as :class:`NoticeCommand` records:
``notice_send`` (the notice, its enterprises already resolved by the console),
``notice_ack``, ``notice_result`` (a delivery's outcome) and the book's ``tick``.
State is two mappings the edge backs with changelog tables, like the book's: notices
by id and deliveries in flight; a restart resumes every reminder and resends, once,
a message that was in flight when the worker died.

Who is told: each enterprise's duty team (its roster team of domain ``enterprise``)
as the roster has it now: A, or B when there is no A or A has no contacts. A reminder
goes to A and B both (the first message did not get an answer).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field

import msgspec

from yujing.alerts import notices as nt
from yujing.alerts.notice_settings import NoticeSettings
from yujing.alerts.records import Delivery, DeliveryResult, tick_time
from yujing.alerts.roster import Roster
from yujing.alerts.store import pkey
from yujing.clock import DEFAULT_ZONE

P = 0   # the partition of yujing.commands notices live on

LinkFor = Callable[[str, str, str, int], "str | None"]   # person, notice, enterprise, now


class NoticeCommand(msgspec.Struct, omit_defaults=True):
    """A notice record on ``yujing.commands`` (the book's :class:`Command` ignores the
    fields it does not know; the ``cmd`` names tell the two apart)."""

    cmd: str                        # notice_send | notice_ack | notice_result | tick
    id: str = ""
    actor: str = ""
    at: int = 0
    notice: nt.Notice | None = None
    notice_id: str = ""
    enterprise: str = ""
    ack: str = ""                   # received | done
    result: DeliveryResult | None = None


@dataclass
class NoticeEffects:
    dispatch: list[Delivery] = field(default_factory=list)
    changed: dict[str, nt.Notice] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)    # notices past retention


class Desk:
    def __init__(self, settings: NoticeSettings, notices: MutableMapping[str, nt.Notice],
                 deliveries: MutableMapping[str, Delivery], roster: Roster | None,
                 link_for: LinkFor, run_id: str, zone: str = DEFAULT_ZONE) -> None:
        self.s = settings
        self.notices = notices
        self.deliveries = deliveries
        self.roster = roster
        self.link_for = link_for
        self.run_id = run_id
        self.zone = zone

    def on_command(self, cmd: NoticeCommand, now_ms: int) -> NoticeEffects:
        fx = NoticeEffects()
        if cmd.cmd == "tick":
            self.on_tick(tick_time(cmd.at, now_ms), fx, own=cmd.actor in ("", self.run_id))
        elif cmd.cmd == "notice_send" and cmd.notice is not None:
            self._send(cmd.notice, now_ms, fx)
        elif cmd.cmd == "notice_ack":
            self._ack(cmd, now_ms, fx)
        elif cmd.cmd == "notice_result" and cmd.result is not None:
            self._result(cmd.result, fx)
        else:
            fx.errors.append(f"notice command {cmd.cmd!r} not understood: use notice_send, "
                             "notice_ack or notice_result")
        return fx

    # -- send --------------------------------------------------------------
    def _send(self, n: nt.Notice, now_ms: int, fx: NoticeEffects) -> None:
        if pkey(P, n.id) in self.notices:
            return   # a replayed send
        for t in n.targets:
            self._tell(n, t, self._first(t.enterprise, now_ms), now_ms, 0, fx)
        self._save(n, fx)

    def _duty(self, enterprise: str, now_ms: int) -> tuple[str | None, str | None]:
        team = self.roster.org_team("enterprise", enterprise) if self.roster else None
        if team is None:
            return None, None
        d = self.roster.duty(team, now_ms)
        return d.A, d.B

    def _reachable(self, pid: str | None) -> bool:
        p = self.roster.person(pid) if pid and self.roster else None
        return p is not None and bool(p.contacts)

    def _first(self, enterprise: str, now_ms: int) -> list[str]:
        """A, or B when there is no A or A cannot be reached."""
        a, b = self._duty(enterprise, now_ms)
        if self._reachable(a):
            return [a]
        return [b] if self._reachable(b) else [x for x in (a, b) if x][:1]

    def _tell(self, n: nt.Notice, t: nt.Target, people: list[str], now_ms: int, reminder: int,
              fx: NoticeEffects) -> None:
        if not people:
            t.failed = "该企业没有值班人员 / no duty person for this enterprise in the roster"
            return
        for pid in people:
            person = self.roster.person(pid) if self.roster else None
            name = person.name if person else pid
            link = self.link_for(pid, n.id, t.enterprise, now_ms)
            msg = nt.message(n, t, name, link, now_ms, reminder, self.zone)
            did = f"notice:{n.id}:{t.enterprise}:{pid}:{reminder}"
            d = Delivery(id=did, group="notice", partition=P, person=pid, person_name=name,
                         roles=[], contacts=person.channels() if person else [],
                         incidents=[n.id, t.enterprise], kinds=["reminder" if reminder else
                                                                "notice"],
                         message=msg, run=self.run_id, created_ms=now_ms)
            self.deliveries[pkey(P, did)] = d
            fx.dispatch.append(d)
            if pid not in t.people:
                t.people.append(pid)

    # -- acknowledge and results --------------------------------------------
    def _ack(self, cmd: NoticeCommand, now_ms: int, fx: NoticeEffects) -> None:
        n = self.notices.get(pkey(P, cmd.notice_id))
        if n is None:
            fx.errors.append(f"ack of unknown notice {cmd.notice_id!r} by {cmd.actor}")
            return
        if nt.acknowledge(n, cmd.enterprise, cmd.actor, cmd.ack or "received",
                          cmd.at or now_ms, cmd.id):
            self._save(n, fx)

    def _result(self, res: DeliveryResult, fx: NoticeEffects) -> None:
        d = self.deliveries.get(pkey(P, res.delivery))
        if d is None:
            return   # a duplicate result
        del self.deliveries[pkey(P, res.delivery)]
        n = self.notices.get(pkey(P, d.incidents[0]))
        t = n.target(d.incidents[1]) if n is not None else None
        if t is None:
            return
        if res.ok:
            t.delivered_ms = t.delivered_ms or res.at
            t.failed = ""
        elif not t.delivered_ms:
            t.failed = "; ".join(f"{a.channel}: {a.error}" for a in res.attempts)[:300] \
                or "no contacts"
        self._save(n, fx)

    # -- ticks ---------------------------------------------------------------
    def on_tick(self, now_ms: int, fx: NoticeEffects, own: bool = True) -> None:
        """Reminders that are due; with this run's own tick, what a dead run left in flight.
        Notices past ``retention`` are forgotten first."""
        for k, n in list(self.notices.items()):
            if n.at + self.s.retention.ms <= now_ms:
                del self.notices[k]
                fx.removed.append(n.id)
                continue
            due = nt.next_due(n, self.s)
            if due is None or due > now_ms:
                continue
            for t in nt.reminders_due(n, now_ms, self.s):
                t.reminders += 1
                t.reminded_ms = now_ms
                a, b = self._duty(t.enterprise, now_ms)
                self._tell(n, t, [x for x in dict.fromkeys((a, b)) if x], now_ms, t.reminders,
                           fx)
            self._save(n, fx)
        if own:
            for k, d in list(self.deliveries.items()):
                if d.run != self.run_id:
                    d.run = self.run_id
                    d.redispatched += 1
                    self.deliveries[k] = d
                    fx.dispatch.append(d)

    def _save(self, n: nt.Notice, fx: NoticeEffects) -> None:
        self.notices[pkey(P, n.id)] = n
        fx.changed[n.id] = n
