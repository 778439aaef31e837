"""Safety notices over the ``/v1`` API, and the acknowledge link in a notice.

- ``POST /v1/notices``: the bureau sends a notice (JSON: title, body, kind, severity,
  link, ``to`` by industry tags, towns or enterprise ids). The enterprises are
  resolved here against the enterprises file as it is now and stored with the
  notice; a bad body is a 400 with every reason. A town's regulator sends to the
  town's enterprises only (naming others is a 403); an enterprise's people never.
- ``GET /v1/notices``, ``GET /v1/notices/{id}``: filtered by scope: an enterprise's
  people see the notices sent to their enterprise (and only their own row of the
  tracking), a town's the rows of its enterprises, the bureau everything.
- ``POST /v1/notices/{id}/ack``: an enterprise's person acknowledges for their
  enterprise: ``{"ack": "received"}`` (已收到) or ``{"ack": "done"}`` (已落实).
- ``GET|POST /v1/notice-link/{token}``: the signed link in the message; GET shows the
  notice and two buttons (link scanners open links), POST acknowledges as the person
  the link was sent to. No login: the signed, expiring token is the authority.

Commands go to ``yujing.commands`` partition 0, where the worker's notice desk
(``alerts/notice_desk.py``) applies them; the tracking arrives back as ``notice:``
snapshots on ``yujing.incidents``.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from yujing import clock
from yujing.alerts import notices as nt
from yujing.alerts.notice_desk import NoticeCommand, P
from yujing.alerts.orgs import Orgs, load_orgs
from yujing.alerts.signing import Claim
from yujing.console.acklink import claim_of, own_origin, page
from yujing.console.reports_api import read_body
from yujing.console.session import console_of, name_of, need_user
from yujing.console.state import Console
from yujing.yamlsrc import SourceError

ID = re.compile(r"N(\d{14})-[0-9a-f]{6}")  # new_id's form

_enc = msgspec.json.Encoder()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def refuse_sender(c: Console, who: str) -> str | None:
    """Why ``who`` may not send notices, or None: the bureau sends to any enterprise, a town's
    regulators to their town's (checked per send, ``nt.for_town``), an enterprise to none."""
    scope = c.rights.scope_of(who)
    if scope.level in ("bureau", "town"):
        return None
    return (f"无权发送通知：{who} 属于{scope.words()}，只有市局和镇街监管人员可以发送安全提示 / only "
            f"the bureau and the towns' regulators send notices; {who} belongs to {scope.level} "
            f"{scope.key}")


def orgs_of(c: Console) -> Orgs | None:
    path = c.cfg.alerts.enterprises
    return load_orgs(path) if path else None


def new_id(now_ms: int, zone: str) -> str:
    t = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(zone))
    return f"N{t:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def fresh_id(nid: str, now_ms: int, zone: str, within_ms: int = 60_000) -> bool:
    """Was ``nid`` (:func:`new_id`'s form) issued within the last ``within_ms``? Only such a
    notice is waited for when the console has not read it yet (``Console.notice``)."""
    m = ID.fullmatch(nid)
    if m is None:
        return False
    t = datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo(zone))
    return -5_000 <= now_ms - t.timestamp() * 1000 <= within_ms


async def find(c: Console, request: web.Request) -> nt.Notice | None:
    """The notice the path names, waited for a moment when it was issued just now."""
    nid = request.match_info["id"]
    return await c.notice(nid, fresh_id(nid, clock.now_ms(), c.cfg.timezone))


async def send_notice(c: Console, who: str, raw: bytes) -> tuple[int, dict]:
    """(status, JSON) of a send: 202 with the notice's id and enterprises, or 400/403."""
    refused = refuse_sender(c, who)
    if refused:
        return 403, {"error": refused}
    try:
        orgs = orgs_of(c)
        order, chosen = nt.parse_order(raw, orgs, c.cfg.alerts.notices)
    except (nt.NoticeError, SourceError) as exc:
        return 400, {"error": str(exc)}
    scope = c.rights.scope_of(who)
    if scope.level == "town":
        chosen, beyond = nt.for_town(orgs, order.to, chosen, scope.key, scope.enterprises)
        if beyond:
            return 403, {"error": "; ".join(beyond)}
    now = clock.now_ms()
    n = nt.new_notice(new_id(now, c.cfg.timezone), order, chosen, orgs, who, now)
    await send_command(c, NoticeCommand("notice_send", id=n.id, actor=who, at=now, notice=n))
    return 202, {"notice": n.id, "enterprises": chosen, "by": who}


async def send_command(c: Console, cmd: NoticeCommand) -> None:
    await c.bus.send(c.cfg.kafka.topics.commands, _enc.encode(cmd), P)


def shown(c: Console, who: str, n: nt.Notice) -> nt.Notice | None:
    """The notice as ``who`` may see it (only their rows of the tracking), or None."""
    scope = c.rights.scope_of(who)
    if not nt.visible_to(n, scope.level, scope.key):
        return None
    if scope.level == "bureau":
        return n
    keep = [t for t in n.targets
            if (t.town == scope.key if scope.level == "town" else t.enterprise == scope.key)]
    return msgspec.structs.replace(n, targets=keep, commands=[])


def notice_dict(c: Console, n: nt.Notice) -> dict:
    now = clock.now_ms()
    s = c.cfg.alerts.notices
    d = msgspec.to_builtins(n)
    d.pop("commands", None)
    tally = nt.tally(n, now, s)
    d["acked"], d["total"] = tally.acked, tally.total
    d["missing"] = [t.enterprise for t in tally.missing]
    d["unconfirmed"] = [t.enterprise for t in tally.unconfirmed]
    for row, t in zip(d["targets"], n.targets):
        row["status"] = nt.status(t, n, now, s)
    return d


def visible(c: Console, who: str) -> list[nt.Notice]:
    out = [v for n in c.notices.values() if (v := shown(c, who, n)) is not None]
    return sorted(out, key=lambda n: -n.at)


async def list_notices(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    return web.json_response([notice_dict(c, n) for n in visible(c, who)])


async def get_notice(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    n = await find(c, request)
    if n is None:
        return _error(404, f"未找到通知 / unknown notice {request.match_info['id']!r}: GET "
                           "/v1/notices lists them")
    v = shown(c, who, n)
    if v is None:
        return _error(403, f"无权查看：该通知未发给 {who} 所在单位 / not sent to {who}'s enterprise")
    return web.json_response(notice_dict(c, v))


async def post_notice(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    raw = await read_body(request, c.cfg.alerts.commands.body_max)
    status, body = await send_notice(c, who, raw)
    return web.json_response(body, status=status)


def refuse_ack(c: Console, who: str, n: nt.Notice) -> tuple[str, str | None]:
    """(the enterprise ``who`` acknowledges for, why not)."""
    scope = c.rights.scope_of(who)
    if scope.level != "enterprise":
        return "", (f"只有收到通知的企业人员可以确认 / only the people of an enterprise the notice "
                    f"went to acknowledge it; {who} belongs to {scope.level} {scope.key}".strip())
    if n.target(scope.key) is None:
        return "", f"该通知未发给企业 {scope.key} / the notice was not sent to {scope.key}"
    return scope.key, None


async def ack_notice(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    n = await find(c, request)
    if n is None:
        return _error(404, f"未找到通知 / unknown notice {request.match_info['id']!r}")
    enterprise, why = refuse_ack(c, who, n)
    if why:
        return _error(403, why)
    raw = await read_body(request, c.cfg.alerts.commands.body_max)
    try:
        body = msgspec.json.decode(raw.strip() or b"{}", type=dict[str, str])
        kind = nt.ack_kind(body.get("ack", "received"))
    except (msgspec.DecodeError, nt.NoticeError) as exc:
        return _error(400, f"{exc}; e.g. {{\"ack\": \"received\"}} or {{\"ack\": \"done\"}}")
    cid = uuid.uuid4().hex
    await send_command(c, NoticeCommand("notice_ack", id=cid, actor=who, at=clock.now_ms(),
                                        notice_id=n.id, enterprise=enterprise, ack=kind))
    return web.json_response({"command": cid, "notice": n.id, "enterprise": enterprise,
                              "ack": kind, "by": who}, status=202)


# -- the link in the message ---------------------------------------------------
def _claim(request: web.Request) -> Claim | web.Response:
    return claim_of(request, "notice", 2, "this link does not acknowledge a notice")


def _notice_html(n: nt.Notice | None, nid: str) -> str:
    e = html.escape
    if n is None:
        return f"<p>{e(nid)}：通知尚在送达中 / the notice is on its way</p>"
    link = f'<p><a href="{e(n.link, quote=True)}">详情 / details</a></p>' if n.link else ""
    return f"<p><b>【{e(n.kind)}】{e(n.title)}</b></p><p>{e(n.body)}</p>{link}"


async def link_show(request: web.Request) -> web.Response:
    claim = _claim(request)
    if isinstance(claim, web.Response):
        return claim
    c = console_of(request)
    nid, ent = claim.i
    n = c.notices.get(nid)
    t = n.target(ent) if n else None
    token = html.escape(request.match_info["token"], quote=True)
    done = "".join(f"<br><small>{html.escape(nt.ACKS[a.kind].zh)}：{html.escape(name_of(c, a.by))}"
                   "</small>" for a in (t.acks if t else []))
    return page("确认通知 / Acknowledge notice",
                f"<p>{html.escape(name_of(c, claim.p))}（{html.escape(t.name if t else ent)}）"
                f"{done}</p>{_notice_html(n, nid)}"
                f'<form method="post" action="{token}">'
                f"<button type=submit name=ack value=received>已收到 / Received</button> "
                f"<button type=submit name=ack value=done>已落实 / Carried out</button></form>")


async def link_confirm(request: web.Request) -> web.Response:
    claim = _claim(request)
    if isinstance(claim, web.Response):
        return claim
    c = console_of(request)
    if not own_origin(request, c):
        return page("来源不符 / refused", "<p>来源不是本站：请直接打开消息中的链接。<br><small>This "
                    "request came from another site: open the link from the message.</small></p>",
                    403)
    form = await request.post()
    try:
        kind = nt.ack_kind(str(form.get("ack", "received")))
    except nt.NoticeError as exc:
        return page("确认通知 / Acknowledge notice", f"<p>{html.escape(str(exc))}</p>", 400)
    nid, ent = claim.i
    token = request.match_info["token"]
    cid = "link:" + hashlib.sha256(f"{token}\0{kind}".encode()).hexdigest()[:32]
    await send_command(c, NoticeCommand("notice_ack", id=cid, actor=claim.p, at=clock.now_ms(),
                                        notice_id=nid, enterprise=ent, ack=kind))
    return page("已确认 / acknowledged",
                f"<p>{html.escape(name_of(c, claim.p))}：已确认{html.escape(nt.ACKS[kind].zh)}。<br>"
                f"<small>Acknowledged ({html.escape(nt.ACKS[kind].en)}).</small></p>"
                + _notice_html(c.notices.get(nid), nid))


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/notices", list_notices)
    r.add_post("/notices", post_notice)
    r.add_get("/notices/{id}", get_notice)
    r.add_post("/notices/{id}/ack", ack_notice)
    r.add_get("/notice-link/{token}", link_show)
    r.add_post("/notice-link/{token}", link_confirm)
