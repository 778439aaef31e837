"""The Faust edge of safety notices: their tables, their step in the book's agent, delivery.

Why inside the book's agent and topic rather than a topic of their own: a notice
needs exactly what the book already has — commands from the console on
``yujing.commands``, the clock's ticks, delivery through apprise with the result
coming back as a command, changelog tables fenced after each step (Tansu's end
offsets, ``changelog.py``) and snapshots on the compacted ``yujing.incidents`` for
the console (keys ``notice:<id>``, like ``silence:<id>``). A second topic would
duplicate all of that for a few records a day. Notices live on partition 0, in
two tables of their own (``yujing-notices``, ``yujing-notice_deliveries``), so the
book's warning state is untouched.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import MutableMapping
from typing import Any

import msgspec

from yujing import clock
from yujing.alerts.notice_desk import Desk, LinkFor, NoticeCommand, NoticeEffects, P
from yujing.alerts.notices import Notice
from yujing.alerts.records import Attempt, Delivery, DeliveryResult
from yujing.alerts.signing import sign
from yujing.config import Config

log = logging.getLogger("yujing.notices")

# How long the desk waits for a notice's snapshot to be in Kafka before its messages go out
# (see NoticeStream.effects); a broker that does not answer in that time does not hold up
# the messages: telling the enterprises comes first.
STORE_WAIT_S = 10.0
_enc = msgspec.json.Encoder()
_head = msgspec.json.Decoder(NoticeCommand)


def notice_link_maker(cfg: Config) -> LinkFor:
    """Signed links ``/v1/notice-link/{token}`` that acknowledge one enterprise's notice."""
    secret = cfg.console.link_secret or os.environ.get("YUJING_LINK_SECRET")
    base = (cfg.console.public_url or f"http://{cfg.http.host}:{cfg.http.port}").rstrip("/")
    ttl = cfg.alerts.notices.link_ttl.ms
    if not secret:
        return lambda person, notice, enterprise, now: None

    def link(person: str, notice: str, enterprise: str, now_ms: int) -> str:
        token = sign(secret.encode(), "notice", person, [notice, enterprise], now_ms + ttl)
        return f"{base}/v1/notice-link/{token}"
    return link


class NoticeEdge:
    """Takes the notice commands of ``yujing.commands`` partition 0 before the book does."""

    def __init__(self, alerting: Any, notices: MutableMapping[str, Notice],
                 deliveries: MutableMapping[str, Delivery]) -> None:
        self.a = alerting
        cfg: Config = alerting.cfg
        self.tables = {"notices": notices, "notice_deliveries": deliveries}
        self.desk = Desk(cfg.alerts.notices, notices, deliveries, getattr(alerting, "roster", None),
                         notice_link_maker(cfg), alerting.run_id, cfg.timezone)

    def step(self, p: int, value: bytes) -> tuple[NoticeEffects | None, bool]:
        """(the effects of a notice command or a partition-0 tick, whether the book takes
        the message too): the book takes everything but notice commands."""
        if p != P:
            return None, True
        try:
            cmd = _head.decode(value)
        except msgspec.DecodeError:
            return None, True   # the book logs it
        if not (cmd.cmd.startswith("notice_") or cmd.cmd == "tick"):
            return None, True
        self.desk.roster = self.a.roster
        try:
            fx = self.desk.on_command(cmd, clock.now_ms())
        except Exception:
            log.exception("notice desk failed on %s", cmd.cmd)
            fx = None
        if cmd.cmd == "notice_ack":
            log.info("notice %s: %s of %s by %s %s", cmd.notice_id, cmd.ack, cmd.enterprise,
                     cmd.actor, "recorded" if fx and fx.changed else "changed nothing")
        return fx, cmd.cmd == "tick"

    async def effects(self, fx: NoticeEffects) -> None:
        """Store the changed notices' snapshots, then send the messages. The snapshots are
        waited for first (at most :data:`STORE_WAIT_S`): an officer who follows a notice's
        link or acknowledges the moment it arrives must find the notice in the console, not
        「未找到通知」 (a 404 seen in CI when the message beat its snapshot)."""
        stored = []
        for n in fx.changed.values():
            stored.append(await self.a.incidents.send(key=f"notice:{n.id}".encode(),
                                                      value=_enc.encode(n), partition=P))
        for nid in fx.removed:     # a tombstone: the console forgets it too
            await self.a.incidents.send(key=f"notice:{nid}".encode(), value=None, partition=P)
        if fx.dispatch and stored:
            await asyncio.wait([asyncio.ensure_future(f) for f in stored], timeout=STORE_WAIT_S)
        for d in fx.dispatch:
            self.a._spawn(self._deliver(d))
        for err in fx.errors:
            log.warning("notice command refused: %s", err)

    async def _deliver(self, d: Delivery) -> None:
        try:
            res = await self.a.deliverer.deliver(d)
        except Exception as exc:
            log.exception("notice delivery %s raised", d.id)
            res = DeliveryResult(d.id, False, "", [Attempt("", False, str(exc), clock.now_ms())],
                                 clock.now_ms())
        await self.a.commands.send(key=b"notice", partition=P, value=_enc.encode(
            NoticeCommand("notice_result", id=f"result:{d.id}", result=res)))
